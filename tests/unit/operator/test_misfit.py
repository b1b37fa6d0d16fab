"""Infit and outfit mean squares: values under the model, random judges, odd essays, input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from cj_operator.scoring.bradley_terry import fit_bradley_terry
from cj_operator.scoring.misfit import (
    OUTFIT_THRESHOLD,
    misfit_statistics,
    misfitting_essays,
)
from cj_operator.scoring.order_effect import fit_order_effect
from tests.unit.operator import pair_designs

N_ESSAYS = 60
ROUNDS = 20  # one comparison per essay per round: ~20 comparisons per essay
MODEL_JUDGE = "anthropic/model-judge"
RANDOM_JUDGE = "mock/coin-flip"

Comparison = tuple[int, int, bool, str]


def balanced_design(seed: int) -> tuple[tuple[int, int], ...]:
    """~20 comparisons per essay from the project's pairing, balanced slots (pair_designs)."""
    return pair_designs.balanced_design(N_ESSAYS, ROUNDS, seed)


def judged(
    theta: np.ndarray,
    pairs: tuple[tuple[int, int], ...],
    rng: np.random.Generator,
    random_share: float = 0.0,
    gamma: float = 0.0,
) -> list[Comparison]:
    """Each pair goes to the coin-flip judge with probability `random_share`, else to a judge
    that follows Bradley-Terry (plus order effect `gamma`) with abilities `theta`."""
    comparisons = []
    for a, b in pairs:
        if rng.random() < random_share:
            comparisons.append((a, b, bool(rng.random() < 0.5), RANDOM_JUDGE))
        else:
            won = bool(rng.random() < expit(theta[a] - theta[b] + gamma))
            comparisons.append((a, b, won, MODEL_JUDGE))
    return comparisons


def fitted_scores(comparisons: list[Comparison]) -> tuple[float, ...]:
    outcomes = [(a, b) if won else (b, a) for a, b, won, _ in comparisons]
    return fit_bradley_terry(N_ESSAYS, outcomes).scores


def essay_means(
    comparisons: list[Comparison], scores: tuple[float, ...] | np.ndarray
) -> tuple[float, float]:
    """Mean over essays of (infit, outfit)."""
    essays = misfit_statistics(list(scores), comparisons).essays
    assert all(e is not None for e in essays)
    return (
        float(np.mean([e.infit for e in essays if e is not None])),
        float(np.mean([e.outfit for e in essays if e is not None])),
    )


# --- the formulas ---------------------------------------------------------------------------


def test_matches_the_textbook_formulas_on_a_small_example() -> None:
    scores = [0.0, 1.0, -0.5]
    comparisons: list[Comparison] = [
        (0, 1, True, "j1"),
        (1, 0, True, "j1"),
        (2, 1, False, "j2"),
        (0, 2, False, "j2"),
    ]
    gamma = 0.3
    report = misfit_statistics(scores, comparisons, order_effect=gamma)

    # Independently: x in {0, 1} for slot A, p = sigmoid(theta_a - theta_b + gamma).
    rows = []
    for a, b, won, judge in comparisons:
        p = float(expit(scores[a] - scores[b] + gamma))
        x = 1.0 if won else 0.0
        rows.append((a, b, judge, (x - p) ** 2, p * (1 - p)))

    def expected(keep: list[tuple[int, int, str, float, float]]) -> tuple[float, float]:
        infit = sum(r[3] for r in keep) / sum(r[4] for r in keep)
        outfit = sum(r[3] / r[4] for r in keep) / len(keep)
        return infit, outfit

    for essay in range(3):
        statistics = report.essays[essay]
        assert statistics is not None
        keep = [r for r in rows if essay in (r[0], r[1])]
        infit, outfit = expected(keep)
        assert statistics.comparisons == len(keep)
        assert statistics.infit == pytest.approx(infit, rel=1e-12)
        assert statistics.outfit == pytest.approx(outfit, rel=1e-12)
    for judge in ("j1", "j2"):
        keep = [r for r in rows if r[2] == judge]
        infit, outfit = expected(keep)
        assert report.judges[judge].comparisons == 2
        assert report.judges[judge].infit == pytest.approx(infit, rel=1e-12)
        assert report.judges[judge].outfit == pytest.approx(outfit, rel=1e-12)


def test_one_comparison_gives_the_odds_against_the_outcome() -> None:
    # A won with p = sigmoid(-1): z^2 = (1 - p) / p = e; the infit of one comparison is the same.
    report = misfit_statistics([0.0, 1.0], [(0, 1, True, "j")])
    for statistics in (report.essays[0], report.essays[1], report.judges["j"]):
        assert statistics is not None
        assert statistics.outfit == pytest.approx(math.e)
        assert statistics.infit == pytest.approx(math.e)
    # An order effect of +1 makes it a coin flip: z^2 = 1.
    even = misfit_statistics([0.0, 1.0], [(0, 1, True, "j")], order_effect=1.0)
    assert even.judges["j"].outfit == pytest.approx(1.0)


def test_extreme_scores_give_finite_values_without_warnings() -> None:
    with np.errstate(all="raise"):
        report = misfit_statistics([0.0, 30.0], [(0, 1, True, "j"), (1, 0, True, "j")])
    assert report.judges["j"].outfit == pytest.approx((math.exp(30.0) + math.exp(-30.0)) / 2)
    assert math.isfinite(report.judges["j"].infit)


# --- under the model, about 1 ---------------------------------------------------------------


def test_mean_squares_are_about_one_under_the_model() -> None:
    # Measured over these 10 runs (60 essays, ~20 comparisons each, abilities N(0, 1)):
    # mean over essays with the true abilities: infit 0.94-1.07, outfit 0.91-1.15 (means of
    # the 10: 1.009 and 1.020); with the fitted scores (the operator's use): infit 0.87-0.93,
    # outfit 0.78-0.90, below
    # 1 because the fit absorbs noise (60 scores from 600 comparisons: about 1 - 60/600) and
    # the prior shrinks the scores, which makes upsets look less surprising.
    true_means, fitted_means = [], []
    for seed in range(10):
        rng = np.random.default_rng([seed, 1])
        theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
        comparisons = judged(theta, balanced_design(seed % 2), rng)
        true_means.append(essay_means(comparisons, theta))
        fitted_means.append(essay_means(comparisons, fitted_scores(comparisons)))
    true_array, fitted_array = np.array(true_means), np.array(fitted_means)
    np.testing.assert_allclose(true_array, 1.0, atol=0.2)
    np.testing.assert_allclose(true_array.mean(axis=0), 1.0, atol=0.05)
    assert np.all((fitted_array > 0.75) & (fitted_array < 1.0))


def test_few_essays_that_fit_the_model_are_flagged() -> None:
    # Measured: 16 of these 600 essays (2.7%) exceed the threshold by chance.
    flagged = 0
    for seed in range(10):
        rng = np.random.default_rng([seed, 2])
        theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
        comparisons = judged(theta, balanced_design(seed % 2), rng)
        flagged += len(
            misfitting_essays(misfit_statistics(fitted_scores(comparisons), comparisons))
        )
    assert flagged / (10 * N_ESSAYS) < 0.05


# --- misfitting judges and essays -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_a_judge_answering_at_random_has_infit_and_outfit_above_1_3(seed: int) -> None:
    # The coin-flip judge answers a fifth of the comparisons, the other judge follows the
    # model; abilities N(0, 2) (essays spread over about +-4 logits), non-adaptive pairing.
    # Measured over 40 seeds of this set-up (these 6 are the first): the coin-flip judge's
    # infit 1.34-1.62 (mean 1.48), outfit 1.47-2.42 (mean 1.84), above 1.3 in all 40; the
    # model judge's infit 0.66-0.78 (below 1: the random answers compress the fitted scale).
    rng = np.random.default_rng([seed, 3])
    theta = rng.normal(0.0, 2.0, size=N_ESSAYS)
    comparisons = judged(theta, balanced_design(seed % 2), rng, random_share=0.2)

    judges = misfit_statistics(fitted_scores(comparisons), comparisons).judges

    assert judges[RANDOM_JUDGE].infit > 1.3
    assert judges[RANDOM_JUDGE].outfit > 1.3
    assert judges[MODEL_JUDGE].infit < 1.0
    assert judges[MODEL_JUDGE].outfit < 1.0
    assert judges[RANDOM_JUDGE].comparisons + judges[MODEL_JUDGE].comparisons == len(comparisons)


def test_a_judge_answering_half_the_comparisons_at_random_misfits_less_clearly() -> None:
    # Limitation, measured: when the coin-flip judge answers half of the comparisons the fit
    # compresses the scale to match, its answers look less surprising, and its infit is only
    # 1.08-1.19 (outfit 1.11-1.26) over 20 seeds with abilities N(0, 2): at least 0.26
    # above the model judge's (0.70-0.84) but below 1.3. Compare judges with each other, not
    # only with a fixed threshold.
    for seed in range(3):
        rng = np.random.default_rng([seed, 4])
        theta = rng.normal(0.0, 2.0, size=N_ESSAYS)
        comparisons = judged(theta, balanced_design(seed % 2), rng, random_share=0.5)
        judges = misfit_statistics(fitted_scores(comparisons), comparisons).judges
        assert 1.0 < judges[RANDOM_JUDGE].infit < 1.3
        assert judges[RANDOM_JUDGE].infit > judges[MODEL_JUDGE].infit + 0.2
        assert judges[RANDOM_JUDGE].outfit > judges[MODEL_JUDGE].outfit + 0.2


@pytest.mark.parametrize("seed", range(3))
def test_an_essay_with_reversed_results_is_flagged(seed: int) -> None:
    # The essay of median ability wins against every stronger essay and loses against every
    # weaker one; the others are judged by the model. (An essay at the top or bottom with
    # reversed results just looks like an essay at the other end: that is not misfit.)
    rng = np.random.default_rng([seed, 5])
    theta = rng.normal(0.0, 1.5, size=N_ESSAYS)
    odd = int(np.argsort(theta)[N_ESSAYS // 2])
    comparisons = []
    for a, b, won, judge in judged(theta, balanced_design(seed % 2), rng):
        if odd in (a, b):
            other = b if a == odd else a
            odd_wins = theta[other] > theta[odd]
            won = odd_wins if a == odd else not odd_wins
        comparisons.append((a, b, won, judge))

    report = misfit_statistics(fitted_scores(comparisons), comparisons)

    # Measured over 6 seeds: its outfit 1.96-4.21 and infit 1.58-2.72, the highest of all
    # essays each time; 0-2 other essays are flagged by chance.
    assert odd in misfitting_essays(report)
    statistics = report.essays[odd]
    assert statistics is not None
    assert statistics.outfit == max(e.outfit for e in report.essays if e is not None)
    assert statistics.infit > 1.5
    assert len(misfitting_essays(report)) <= 3


def test_the_order_effect_takes_a_slot_bias_out_of_the_residuals() -> None:
    # A judge with a strong slot-A bias (1.5 logits) misfits more when the bias is ignored
    # than when the fitted order effect is given. Measured over 5 seeds: infit 1.04-1.18
    # without, 0.86-0.89 with (the fitted-score level of an unbiased judge, see above).
    rng = np.random.default_rng(6)
    theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
    comparisons = judged(theta, balanced_design(0), rng, gamma=1.5)
    fit = fit_order_effect(N_ESSAYS, [(a, b, won) for a, b, won, _ in comparisons])

    with_gamma = misfit_statistics(fit.scores, comparisons, order_effect=fit.order_effect)
    without = misfit_statistics(fit.scores, comparisons)

    assert without.judges[MODEL_JUDGE].infit > with_gamma.judges[MODEL_JUDGE].infit + 0.1
    assert 0.75 < with_gamma.judges[MODEL_JUDGE].infit < 1.0


# --- flagging -------------------------------------------------------------------------------


def test_flags_essays_above_the_threshold_in_index_order() -> None:
    # Essay 0 keeps losing to essay 1, which is far weaker; essay 3 takes part in nothing.
    scores = [2.0, -2.0, 0.0, 0.5]
    comparisons: list[Comparison] = [(0, 1, False, "j"), (1, 0, True, "j"), (2, 0, False, "j")]
    report = misfit_statistics(scores, comparisons)
    assert report.essays[3] is None
    assert misfitting_essays(report) == (0, 1)
    assert misfitting_essays(report, threshold=1e6) == ()
    assert OUTFIT_THRESHOLD == 1.5


# --- shapes and bad input -------------------------------------------------------------------


def test_shapes_counts_and_judge_order() -> None:
    comparisons: list[Comparison] = [
        (0, 1, True, "z/last"),
        (1, 2, False, "a/first"),
        (2, 0, True, "a/first"),
    ]
    report = misfit_statistics([0.1, 0.2, 0.3, 0.4], comparisons)
    assert len(report.essays) == 4
    assert [e.comparisons if e else 0 for e in report.essays] == [2, 2, 2, 0]
    assert list(report.judges) == ["a/first", "z/last"]
    assert report.judges["a/first"].comparisons == 2


def test_no_comparisons_gives_no_statistics() -> None:
    report = misfit_statistics([0.0, 0.0, 0.0], [])
    assert report.essays == (None, None, None)
    assert dict(report.judges) == {}
    assert misfitting_essays(report) == ()


def test_accepts_numpy_scalars() -> None:
    report = misfit_statistics(
        np.array([0.0, 1.0]),  # type: ignore[arg-type]  # an array is a fine sequence here
        [(np.int64(0), np.int64(1), np.bool_(True), "j")],  # type: ignore[list-item]
    )
    assert report.judges["j"].outfit == pytest.approx(math.e)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([0.0], "at least 2"),
        ([], "at least 2"),
        ([0.0, math.nan], "finite"),
        ([0.0, math.inf], "finite"),
    ],
)
def test_rejects_bad_scores(scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        misfit_statistics(scores, [])


@pytest.mark.parametrize(
    ("comparisons", "message"),
    [
        ([(0, 1, True, "j"), (1, 3, False, "j")], r"comparisons\[1\] has slot B index 3"),
        ([(-1, 0, True, "j")], r"comparisons\[0\] has slot A index -1"),
        ([(0, 1, True, "j"), (2, 2, True, "j")], r"comparisons\[1\] compares essay 2 with itself"),
        ([(0, 1, True)], r"comparisons\[0\] must be a \(slot_a_index, slot_b_index, a_won, judge"),
        ([(0, 1, 1, "j")], r"comparisons\[0\] has a_won 1, not a bool"),
        ([(0, 1, True, None)], r"comparisons\[0\] has judge_key None, not a string"),
        ([(True, 1, True, "j")], r"comparisons\[0\] has slot A index True"),
    ],
)
def test_rejects_bad_comparisons_naming_the_first_one(
    comparisons: list[object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        misfit_statistics([0.0, 0.0, 0.0], comparisons)  # type: ignore[arg-type]  # on purpose


@pytest.mark.parametrize("gamma", [math.nan, math.inf, True, "0.5"])
def test_rejects_an_order_effect_that_is_not_a_finite_number(gamma: object) -> None:
    with pytest.raises(ValueError, match="order_effect"):
        misfit_statistics([0.0, 0.0], [], order_effect=gamma)  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [math.nan, math.inf, True])
def test_rejects_a_threshold_that_is_not_a_finite_number(threshold: float) -> None:
    report = misfit_statistics([0.0, 0.0], [])
    with pytest.raises(ValueError, match="threshold"):
        misfitting_essays(report, threshold=threshold)
