"""Bradley-Terry fit: recovery of known abilities, standard errors, regularisation, SSR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import spearmanr

from cj_operator.scoring.bradley_terry import (
    DEFAULT_ALPHA,
    fit_bradley_terry,
    scale_separation_reliability,
)


def random_design(n_items: int, per_item: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Random perfect matchings stacked until each essay has about `per_item` comparisons."""
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n_items * per_item // 2:
        perm = rng.permutation(n_items)
        pairs += [(int(perm[2 * k]), int(perm[2 * k + 1])) for k in range(n_items // 2)]
    return pairs[: n_items * per_item // 2]


def simulate(
    theta: np.ndarray, pairs: list[tuple[int, int]], rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(winner, loser) per pair, drawn from the Bradley-Terry model with abilities theta."""
    outcomes = []
    for a, b in pairs:
        a_wins = rng.random() < expit(theta[a] - theta[b])
        outcomes.append((a, b) if a_wins else (b, a))
    return outcomes


def log_posterior_gradient(
    theta: np.ndarray, outcomes: list[tuple[int, int]], alpha: float
) -> np.ndarray:
    """Gradient of sum log sigmoid(theta_w - theta_l) + alpha * sum log(sig(t) sig(-t)),
    written out independently of the implementation."""
    gradient = alpha * (1.0 - 2.0 * expit(theta))
    for winner, loser in outcomes:
        surprise = 1.0 - expit(theta[winner] - theta[loser])
        gradient[winner] += surprise
        gradient[loser] -= surprise
    return gradient


# --- recovery -----------------------------------------------------------------------------


def test_recovers_known_abilities_from_simulated_outcomes() -> None:
    rng = np.random.default_rng(20240611)
    theta = rng.normal(0.0, 1.5, size=40)
    outcomes = simulate(theta, random_design(40, 20, rng), rng)

    fit = fit_bradley_terry(40, outcomes)

    scores = np.array(fit.scores)
    rmse = math.sqrt(np.mean((scores - (theta - theta.mean())) ** 2))
    assert spearmanr(scores, theta).statistic > 0.85
    # The error is what the standard errors say it is (about 0.6 logits here).
    assert rmse < 1.3 * math.sqrt(np.mean(np.square(fit.standard_errors)))
    # Reliability is the share of true variance: close to the squared correlation with truth.
    assert fit.reliability is not None
    assert fit.reliability == pytest.approx(np.corrcoef(scores, theta)[0, 1] ** 2, abs=0.1)


def test_more_comparisons_give_better_recovery_and_smaller_standard_errors() -> None:
    rng = np.random.default_rng(5)
    theta = rng.normal(0.0, 1.5, size=30)
    rmse: list[float] = []
    mean_se: list[float] = []
    reliability: list[float] = []
    for per_item in (5, 20, 80):
        fit = fit_bradley_terry(30, simulate(theta, random_design(30, per_item, rng), rng))
        scores = np.array(fit.scores)
        rmse.append(math.sqrt(np.mean((scores - (theta - theta.mean())) ** 2)))
        mean_se.append(float(np.mean(fit.standard_errors)))
        assert fit.reliability is not None
        reliability.append(fit.reliability)
    assert rmse[0] > rmse[1] > rmse[2]
    assert mean_se[0] > mean_se[1] > mean_se[2]
    # Information grows with the number of comparisons: 4x the comparisons, about half the SE.
    assert 1.6 < mean_se[1] / mean_se[2] < 2.4
    assert reliability[0] < reliability[1] < reliability[2]


def test_standard_errors_match_the_spread_of_estimates_over_repeated_judging() -> None:
    n_items, repetitions = 30, 200
    theta = np.linspace(-2.0, 2.0, n_items)
    centred = theta - theta.mean()
    pairs = random_design(n_items, 16, np.random.default_rng(1))
    rng = np.random.default_rng(7)
    estimates, errors = [], []
    for _ in range(repetitions):
        fit = fit_bradley_terry(n_items, simulate(theta, pairs, rng))
        estimates.append(fit.scores)
        errors.append(fit.standard_errors)
    est, se = np.array(estimates), np.array(errors)

    spread_ratio = est.std(axis=0) / se.mean(axis=0)
    assert 0.85 < spread_ratio.mean() < 1.15
    assert np.all((spread_ratio > 0.7) & (spread_ratio < 1.3))
    coverage = np.mean(np.abs(est - centred) < 1.96 * se)
    assert 0.9 < coverage < 0.99


# --- the estimator is the posterior mode it claims to be -----------------------------------


def test_scores_are_the_mode_of_the_regularised_likelihood() -> None:
    rng = np.random.default_rng(3)
    theta = rng.normal(0.0, 1.0, size=12)
    outcomes = simulate(theta, random_design(12, 6, rng), rng)
    alpha = 0.3

    fit = fit_bradley_terry(12, outcomes, alpha=alpha)

    # The phantom essay sits at 0; undo the centring by solving for the shift that makes
    # the gradient vanish (the reported scores are mode - mean(mode)).
    scores = np.array(fit.scores)

    def gradient_sum(shift: float) -> float:
        return float(np.sum(alpha * (1.0 - 2.0 * expit(scores + shift))))

    shift = brentq(gradient_sum, -10.0, 10.0)
    gradient = log_posterior_gradient(scores + shift, outcomes, alpha)
    assert np.max(np.abs(gradient)) < 1e-5


def test_two_essays_one_comparison_matches_the_closed_form() -> None:
    alpha = DEFAULT_ALPHA
    fit = fit_bradley_terry(2, [(0, 1)], alpha=alpha)

    # By symmetry the mode is (t, -t) with 1 - sigmoid(2t) + alpha (1 - 2 sigmoid(t)) = 0.
    t = brentq(lambda t: 1 - expit(2 * t) + alpha * (1 - 2 * expit(t)), 0.0, 20.0)
    assert fit.scores == pytest.approx((t, -t), abs=1e-6)
    # Information: p(1-p) on the pair plus 2 alpha sig(t) sig(-t) per essay; the centred
    # score t = (theta_0 - theta_1) / 2 has variance (1/4) var(theta_0 - theta_1).
    p = expit(2 * t)
    pair_information = p * (1 - p)
    prior_information = 2 * alpha * expit(t) * expit(-t)
    variance_of_difference = 2.0 / (2 * pair_information + prior_information)
    expected_se = math.sqrt(variance_of_difference / 4)
    assert fit.standard_errors == pytest.approx((expected_se, expected_se), rel=1e-6)


def test_scores_are_centred_and_follow_the_wins() -> None:
    fit = fit_bradley_terry(3, [(0, 1), (0, 1), (1, 0), (1, 2), (1, 2), (0, 2)])
    assert sum(fit.scores) == pytest.approx(0.0, abs=1e-9)
    assert fit.scores[0] > fit.scores[1] > fit.scores[2]


def test_relabelling_essays_permutes_the_result_and_order_of_outcomes_does_not_matter() -> None:
    rng = np.random.default_rng(11)
    theta = rng.normal(0.0, 1.0, size=9)
    outcomes = simulate(theta, random_design(9, 8, rng), rng)
    fit = fit_bradley_terry(9, outcomes)

    perm = rng.permutation(9)
    relabelled = [(int(perm[w]), int(perm[loser])) for w, loser in reversed(outcomes)]
    refit = fit_bradley_terry(9, relabelled)

    assert np.array(refit.scores)[perm] == pytest.approx(np.array(fit.scores), abs=1e-5)
    assert np.array(refit.standard_errors)[perm] == pytest.approx(
        np.array(fit.standard_errors), abs=1e-5
    )
    assert refit.reliability == pytest.approx(fit.reliability, abs=1e-6)


# --- standard errors ------------------------------------------------------------------------


def test_no_essay_gets_a_zero_standard_error_and_symmetric_designs_get_equal_ones() -> None:
    # A cycle 0>1>2>3>0: all essays are exchangeable.
    fit = fit_bradley_terry(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    assert all(se > 0.1 for se in fit.standard_errors)
    assert fit.standard_errors == pytest.approx((fit.standard_errors[0],) * 4, rel=1e-6)
    assert fit.scores == pytest.approx((0.0,) * 4, abs=1e-6)


def test_essays_compared_more_often_have_smaller_standard_errors() -> None:
    outcomes = [(0, 1), (1, 0)] * 10 + [(0, 2), (2, 0)]
    fit = fit_bradley_terry(3, outcomes)
    assert fit.standard_errors[0] < fit.standard_errors[2]
    assert fit.standard_errors[1] < fit.standard_errors[2]


# --- regularisation: degenerate comparison graphs -----------------------------------------


def test_disconnected_comparison_graph_gives_finite_scores_with_larger_errors() -> None:
    within = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    disconnected = fit_bradley_terry(6, within)
    connected = fit_bradley_terry(6, [*within, (2, 3), (3, 2)])

    assert all(math.isfinite(s) for s in disconnected.scores)
    assert all(math.isfinite(se) and se > 0 for se in disconnected.standard_errors)
    # Each component is ordered by its own wins.
    assert disconnected.scores[0] > disconnected.scores[1] > disconnected.scores[2]
    assert disconnected.scores[3] > disconnected.scores[4] > disconnected.scores[5]
    # Nothing ties the components together but the prior: they are less certain.
    assert np.mean(disconnected.standard_errors) > np.mean(connected.standard_errors)


@pytest.mark.parametrize("wins", [1, 5, 40])
def test_an_essay_that_always_wins_or_loses_gets_a_finite_extreme_score(wins: int) -> None:
    # Essay 0 beats everyone, essay 3 loses to everyone, 1 and 2 split their games.
    outcomes = [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (1, 2), (2, 1)] * wins
    fit = fit_bradley_terry(4, outcomes)

    assert all(math.isfinite(s) for s in fit.scores)
    assert all(math.isfinite(se) for se in fit.standard_errors)
    assert fit.scores[0] == max(fit.scores)
    assert fit.scores[3] == min(fit.scores)
    assert fit.scores[0] == pytest.approx(-fit.scores[3], abs=1e-6)
    # Unbeaten over 3w games: the prior caps the score at about log(3w / alpha) + 2.
    assert fit.scores[0] < math.log(3 * wins / DEFAULT_ALPHA) + 2


def test_stronger_regularisation_shrinks_scores() -> None:
    outcomes = [(0, 1), (0, 1), (1, 2), (0, 2), (2, 1)]
    weak = fit_bradley_terry(3, outcomes, alpha=0.05)
    strong = fit_bradley_terry(3, outcomes, alpha=5.0)
    assert np.ptp(strong.scores) < np.ptp(weak.scores)
    assert np.mean(strong.standard_errors) < np.mean(weak.standard_errors)


def test_no_outcomes_gives_zero_scores_and_undefined_reliability() -> None:
    fit = fit_bradley_terry(5, [])
    assert fit.scores == pytest.approx((0.0,) * 5, abs=1e-9)
    assert all(math.isfinite(se) and se > 0 for se in fit.standard_errors)
    assert fit.reliability is None


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [0, 1, -3, 2.0, True])
def test_rejects_fewer_than_two_essays_or_a_non_integer_count(n_items: object) -> None:
    with pytest.raises(ValueError, match="n_items"):
        fit_bradley_terry(n_items, [])  # type: ignore[arg-type]  # deliberately wrong type


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ([(0, 1), (1, 3)], r"outcomes\[1\] has loser index 3"),
        ([(-1, 0)], r"outcomes\[0\] has winner index -1"),
        ([(0, 1), (2, 2)], r"outcomes\[1\] compares essay 2 with itself"),
        ([(0, 1, 2)], r"outcomes\[0\] must be a \(winner_index, loser_index\) pair"),
        ([(0, "1")], r"outcomes\[0\] has loser index '1'"),
        ([(0.0, 1)], r"outcomes\[0\] has winner index 0.0"),
    ],
)
def test_rejects_bad_outcomes_naming_the_first_one(
    outcomes: list[tuple[int, int]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bradley_terry(3, outcomes)


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.nan, math.inf])
def test_rejects_a_regularisation_that_is_not_positive(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        fit_bradley_terry(3, [(0, 1)], alpha=alpha)


def test_accepts_numpy_integer_indices() -> None:
    outcomes = [(np.int64(0), np.int64(1)), (np.int32(1), np.int32(2))]
    fit = fit_bradley_terry(3, outcomes)  # type: ignore[arg-type]  # numpy ints are ints here
    assert fit.scores[0] > fit.scores[2]


# --- scale separation reliability -----------------------------------------------------------


def test_ssr_is_true_variance_over_observed_variance() -> None:
    # Sample variance of (-1, 0, 1) is 1; mean squared error 0.25.
    assert scale_separation_reliability([-1.0, 0.0, 1.0], [0.5, 0.5, 0.5]) == pytest.approx(0.75)
    assert scale_separation_reliability([-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]) == pytest.approx(1.0)


def test_ssr_is_zero_when_error_swamps_the_spread_and_none_when_undefined() -> None:
    assert scale_separation_reliability([-1.0, 0.0, 1.0], [2.0, 2.0, 2.0]) == 0.0
    assert scale_separation_reliability([0.3, 0.3], [0.1, 0.1]) is None
    assert scale_separation_reliability([0.3], [0.1]) is None
    assert scale_separation_reliability([], []) is None


def test_ssr_of_fits_stays_in_bounds() -> None:
    rng = np.random.default_rng(99)
    for _ in range(20):
        n_items = int(rng.integers(2, 25))
        theta = rng.normal(0.0, float(rng.uniform(0.1, 3.0)), size=n_items)
        per_item = int(rng.integers(1, 15))
        fit = fit_bradley_terry(
            n_items, simulate(theta, random_design(n_items, per_item, rng), rng)
        )
        assert fit.reliability is None or 0.0 <= fit.reliability < 1.0


@pytest.mark.parametrize(
    ("scores", "errors", "message"),
    [
        ([0.0, 1.0], [0.1], "differ in length"),
        ([0.0, math.nan], [0.1, 0.1], "scores must all be finite"),
        ([0.0, 1.0], [0.1, -0.1], "standard_errors must all be finite numbers >= 0"),
        ([0.0, 1.0], [0.1, math.inf], "standard_errors must all be finite numbers >= 0"),
    ],
)
def test_ssr_rejects_bad_input(scores: list[float], errors: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scale_separation_reliability(scores, errors)
