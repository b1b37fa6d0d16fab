"""Judge panels: the assignment of comparisons to judges, the spec, per-judge diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from cj_operator.pairing.panel import JudgeHistory, assign_judges
from cj_operator.pairing.selection import select_pairs
from cj_operator.scoring.diagnostics import diagnose
from cj_operator.spec import CJBatchSpec
from tests.support.spec_cases import base_spec


def _spec(**changes: object) -> dict[str, object]:
    return base_spec() | changes


def _assign(n: int, rounds: int, shares: list[float]) -> tuple[JudgeHistory, np.ndarray]:
    history: list[tuple[int, int]] = []
    judges = JudgeHistory(len(shares))
    per_essay = np.zeros((n, len(shares)))
    for r in range(rounds):
        pairs = select_pairs(n, None, history, max_pairs=n // 2, seed=r)
        for (a, b), k in zip(pairs, assign_judges(pairs, shares, judges), strict=True):
            per_essay[a, k] += 1
            per_essay[b, k] += 1
        history += pairs
    return judges, per_essay


def test_comparisons_follow_the_judges_shares() -> None:
    judges, _ = _assign(60, 20, [1.0, 1.0, 2.0])
    total = sum(judges.per_judge)
    assert total == 600
    wanted = [0.25, 0.25, 0.5]
    assert all(
        abs(c - total * w) <= 0.02 * total for c, w in zip(judges.per_judge, wanted, strict=True)
    )


def test_every_essay_meets_every_judge_about_equally_often() -> None:
    _, per_essay = _assign(60, 21, [1.0, 1.0, 1.0])
    # 21 comparisons per essay over 3 judges: 7 each, within one or two
    assert per_essay.min() >= 5
    assert per_essay.max() <= 9


def test_each_judge_sees_an_essay_in_both_slots() -> None:
    judges, _ = _assign(40, 20, [1.0, 1.0])
    for essay in range(40):
        for k in range(2):
            in_a = judges.per_slot[(essay, k, 0)]
            in_b = judges.per_slot[(essay, k, 1)]
            assert abs(in_a - in_b) <= 4, (essay, k, in_a, in_b)


def test_a_single_judge_gets_every_comparison() -> None:
    assert assign_judges([(0, 1), (2, 3)], [1.0], JudgeHistory(1)) == [0, 0]


@pytest.mark.parametrize(
    ("shares", "n_judges", "message"),
    [
        ([], 1, "must name every judge"),
        ([1.0, 1.0], 3, "must name every judge"),
        ([1.0, 0.0], 2, "every share must be > 0"),
    ],
)
def test_bad_shares_are_named(shares: list[float], n_judges: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assign_judges([(0, 1)], shares, JudgeHistory(n_judges))


def test_a_panel_spec_lists_its_judges_and_shares() -> None:
    spec = CJBatchSpec.model_validate(
        _spec(
            judges=[{"provider": "offline"}, {"provider": "simulated", "share": 2}],
        )
    )
    assert [j.provider for j in spec.panel()] == ["offline", "simulated"]
    assert spec.panel_shares() == [1.0, 2.0]
    single = CJBatchSpec.model_validate(_spec(judge={"provider": "mock"}))
    assert [j.provider for j in single.panel()] == ["mock"]
    assert single.panel_shares() == [1.0]


def test_a_spec_with_both_a_judge_and_a_panel_is_refused() -> None:
    with pytest.raises(ValueError, match=r"set spec\.judge or spec\.judges \(a panel\), not both"):
        CJBatchSpec.model_validate(
            _spec(judge={"provider": "mock"}, judges=[{"provider": "offline"}] * 2)
        )


def test_a_panel_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 items"):
        CJBatchSpec.model_validate(_spec(judges=[{"provider": "offline"}]))


def test_per_judge_agreement_and_order_effect_tell_a_biased_random_judge_apart() -> None:
    rng = np.random.default_rng(0)
    n = 40
    theta = rng.normal(0.0, 1.5, n)
    judged: list[tuple[int, int, bool, str]] = []
    for _ in range(1200):
        a, b = rng.choice(n, 2, replace=False)
        good = bool(rng.random() < expit(theta[a] - theta[b]))
        judged.append((int(a), int(b), good, "good/m"))
        biased = bool(rng.random() < expit(1.0))  # ignores the essays, favours slot A
        judged.append((int(a), int(b), biased, "biased/m"))
    diagnostics = diagnose(n, judged)
    assert diagnostics is not None
    judges = {j.judge: j for j in diagnostics.judges}
    assert judges["good/m"].agreement > judges["biased/m"].agreement + 0.1
    slot_a_lover = judges["biased/m"]
    assert abs(slot_a_lover.order_effect - 1.0) < 3 * slot_a_lover.order_effect_se + 0.3
    assert abs(judges["good/m"].order_effect) < 3 * judges["good/m"].order_effect_se + 0.2
