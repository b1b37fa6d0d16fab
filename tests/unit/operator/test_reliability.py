"""The empirical-Bayes reliability: near 0 when nothing differs, high when essays differ a lot,
through the operator's own pair selection (calibration table: bench/reliability_calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cj_operator.planning import is_adaptive_round
from cj_operator.scoring.reliability import empirical_bayes_reliability
from tests.support.simulation import simulate_batch


def test_identical_essays_report_a_reliability_near_zero() -> None:
    batches = [simulate_batch(100, 10, 0.0, seed) for seed in range(1, 7)]
    reported = [b.fit.reliability if b.fit.reliability is not None else 1.0 for b in batches]
    ssr = [b.fit.ssr if b.fit.ssr is not None else 0.0 for b in batches]
    # The mean is what calibration promises; one batch of pure noise can show up to ~0.3 by
    # chance (the ability variance is then hard to tell from 0), far below any usable target.
    assert float(np.mean(reported)) < 0.15
    assert max(reported) < 0.4
    # The scale separation reliability of the same fits is what adaptivity inflates.
    assert float(np.mean(ssr)) > float(np.mean(reported)) + 0.15


@pytest.mark.parametrize("seed", [1, 2])
def test_essays_far_apart_report_a_high_reliability(seed: int) -> None:
    batch = simulate_batch(100, 10, 3.0, seed)
    assert batch.fit.reliability is not None
    assert batch.fit.reliability > 0.85
    assert abs(batch.fit.reliability - batch.true_reliability) < 0.08


def test_the_first_rounds_and_every_third_after_are_non_adaptive() -> None:
    assert [r for r in range(1, 17) if not is_adaptive_round(r)] == [1, 2, 3, 4, 7, 10, 13, 16]


def test_no_comparisons_means_no_reliability() -> None:
    empty = np.array([], dtype=np.intp)
    result = empirical_bayes_reliability(5, empty, empty)
    assert result.reliability == 0.0


def test_a_perfectly_ordered_batch_estimates_a_large_ability_variance() -> None:
    winners, losers = zip(*[(i, j) for i in range(8) for j in range(i + 1, 8)] * 3, strict=True)
    result = empirical_bayes_reliability(
        8, np.array(losers, dtype=np.intp), np.array(winners, dtype=np.intp)
    )
    assert result.ability_variance > 4.0
    assert result.reliability > 0.8


def test_bad_input_is_refused() -> None:
    one = np.array([0], dtype=np.intp)
    with pytest.raises(ValueError, match="n_items must be >= 2"):
        empirical_bayes_reliability(1, one, one)
    with pytest.raises(ValueError, match="differ in length"):
        empirical_bayes_reliability(3, one, np.array([1, 2], dtype=np.intp))
