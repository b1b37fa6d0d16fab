"""The score-stability rule in standard errors, through the operator's own rounds (simulated)."""

from __future__ import annotations

import pytest

from cj_operator.lifecycle.reasons import Reason
from cj_operator.scoring.stopping import DEFAULT_STABILITY_THRESHOLD_SE
from tests.support.simulation import simulate_batch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_generous_budget_ends_on_stable_scores_after_a_predictable_number_of_rounds(
    seed: int,
) -> None:
    batch = simulate_batch(40, 60, 1.5, seed, stability_threshold_se=DEFAULT_STABILITY_THRESHOLD_SE)
    assert batch.stop is not None
    assert batch.stop.reason == Reason.SCORES_STABLE, batch.stop.message
    per_essay = 2 * len(batch.comparisons) / 40
    # bench/stability_rule.py: the default is reached after about 22-30 comparisons per essay
    assert 15 <= per_essay <= 36
    assert batch.true_reliability > 0.8


def test_stable_scores_say_nothing_about_reliability_when_nothing_differs() -> None:
    batch = simulate_batch(40, 60, 0.0, 0, stability_threshold_se=DEFAULT_STABILITY_THRESHOLD_SE)
    assert batch.stop is not None
    assert batch.stop.reason == Reason.SCORES_STABLE
    assert batch.fit.reliability is not None
    assert batch.fit.reliability < 0.15


def test_the_rule_does_not_fire_within_the_default_budget() -> None:
    batch = simulate_batch(40, 10, 1.5, 0, stability_threshold_se=DEFAULT_STABILITY_THRESHOLD_SE)
    assert batch.stop is not None
    assert batch.stop.reason == Reason.BUDGET_EXHAUSTED
