"""Order effect (slot A advantage): recovery, calibration, agreement with the plain fit, input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime, brentq
from scipy.special import expit

from cj_operator.scoring.bradley_terry import DEFAULT_ALPHA, fit_bradley_terry
from cj_operator.scoring.order_effect import SIGNIFICANCE_LEVEL, fit_order_effect
from tests.unit.operator import pair_designs

N_ESSAYS = 60
ROUNDS = 20  # one comparison per essay per round: ~20 comparisons per essay


def balanced_design(seed: int) -> tuple[tuple[int, int], ...]:
    """~20 comparisons per essay from the project's pairing, balanced slots (pair_designs)."""
    return pair_designs.balanced_design(N_ESSAYS, ROUNDS, seed)


def simulate(
    theta: np.ndarray,
    pairs: tuple[tuple[int, int], ...],
    gamma: float,
    rng: np.random.Generator,
) -> list[tuple[int, int, bool]]:
    """(slot_a, slot_b, a_won) per pair from P(A wins) = sigmoid(theta_a - theta_b + gamma)."""
    return [(a, b, bool(rng.random() < expit(theta[a] - theta[b] + gamma))) for a, b in pairs]


def log_posterior_gradient(
    theta: np.ndarray, gamma: float, outcomes: list[tuple[int, int, bool]], alpha: float
) -> np.ndarray:
    """Gradient in (theta, gamma) of sum log P(outcome) + alpha sum log(sig(t) sig(-t)) over
    the thetas and gamma, written out independently of the implementation."""
    gradient = alpha * (1.0 - 2.0 * expit(np.append(theta, gamma)))
    for a, b, a_won in outcomes:
        residual = float(a_won) - expit(theta[a] - theta[b] + gamma)
        gradient[a] += residual
        gradient[b] -= residual
        gradient[-1] += residual
    return gradient


# --- recovery and calibration over seeded runs ----------------------------------------------


def test_recovers_an_order_effect_within_two_standard_errors() -> None:
    # Measured: 38 of these 40 runs (95%) cover 0.5 (mean estimate 0.477, spread 0.088, mean
    # SE 0.099). Over 1,200 runs of the same set-up (three designs) 96.1% cover it, the mean
    # estimate is 0.509 and its spread (0.100) equals the mean standard error (0.100).
    estimates, covered = [], 0
    for seed in range(40):
        rng = np.random.default_rng([seed, 1])
        theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
        fit = fit_order_effect(N_ESSAYS, simulate(theta, balanced_design(seed % 2), 0.5, rng))
        estimates.append(fit.order_effect)
        covered += abs(fit.order_effect - 0.5) < 2.0 * fit.standard_error
        assert fit.significant
        assert fit.z == pytest.approx(fit.order_effect / fit.standard_error)
        assert 0.05 < fit.standard_error < 0.15
    assert covered / 40 >= 0.95
    assert np.mean(estimates) == pytest.approx(0.5, abs=0.05)


def test_p_value_is_calibrated_without_an_order_effect() -> None:
    # Measured here: 9 of 200 (4.5%) have p < 0.05 and 1 (0.5%) p < 0.01, SD of z 0.97;
    # over 1,200 runs of the same set-up (three designs) 4.8% and 1.0%.
    p_values, z_values = [], []
    for seed in range(200):
        rng = np.random.default_rng([seed, 2])
        theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
        fit = fit_order_effect(N_ESSAYS, simulate(theta, balanced_design(seed % 2), 0.0, rng))
        p_values.append(fit.p_value)
        z_values.append(fit.z)
        assert fit.significant == (fit.p_value < SIGNIFICANCE_LEVEL)
    p = np.array(p_values)
    assert 0.02 <= np.mean(p < 0.05) <= 0.09
    assert np.mean(p < SIGNIFICANCE_LEVEL) <= 0.03
    assert np.std(z_values) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("gamma", [-0.8, 0.8])
def test_the_sign_says_which_slot_is_favoured(gamma: float) -> None:
    rng = np.random.default_rng(11)
    theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
    fit = fit_order_effect(N_ESSAYS, simulate(theta, balanced_design(0), gamma, rng))
    assert math.copysign(1.0, fit.order_effect) == math.copysign(1.0, gamma)
    assert fit.significant
    assert fit.p_value < 1e-6


# --- agreement with fit_bradley_terry -------------------------------------------------------


def test_scores_equal_fit_bradley_terry_when_the_slots_carry_no_information() -> None:
    # Every comparison also appears with the slots swapped and the same winner: the order
    # effect is exactly 0 at the mode, so the scores solve the same equations as the plain
    # fit (same regularisation); they differ only by the solvers' tolerances.
    rng = np.random.default_rng(5)
    theta = rng.normal(0.0, 1.5, size=N_ESSAYS)
    outcomes = simulate(theta, balanced_design(0), 0.0, rng)
    mirrored = outcomes + [(b, a, not a_won) for a, b, a_won in outcomes]

    fit = fit_order_effect(N_ESSAYS, mirrored)
    plain = fit_bradley_terry(N_ESSAYS, [(a, b) if w else (b, a) for a, b, w in mirrored])

    assert abs(fit.order_effect) < 1e-9
    assert fit.p_value == pytest.approx(1.0)
    assert not fit.significant
    np.testing.assert_allclose(fit.scores, plain.scores, atol=1e-5)


def test_scores_are_close_to_fit_bradley_terry_without_an_order_effect() -> None:
    # With no order effect in the judge, the estimate is only sampling noise (SE ~0.1), and
    # so is the difference of the scores. Measured over these 10 runs: at most 0.026 logits,
    # against standard errors of the scores of about 0.5; correlation > 0.99998.
    for seed in range(10):
        rng = np.random.default_rng([seed, 3])
        theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
        outcomes = simulate(theta, balanced_design(seed % 2), 0.0, rng)
        fit = fit_order_effect(N_ESSAYS, outcomes)
        plain = fit_bradley_terry(N_ESSAYS, [(a, b) if w else (b, a) for a, b, w in outcomes])
        np.testing.assert_allclose(fit.scores, plain.scores, atol=0.1)
        assert np.corrcoef(fit.scores, plain.scores)[0, 1] > 0.9999


def test_scores_ignore_an_order_effect_that_the_plain_fit_would_absorb() -> None:
    # A judge with a strong slot-A bias on an unbalanced design (essay 0 always in slot A)
    # inflates essay 0 in the plain fit; the order-effect fit separates the two.
    rng = np.random.default_rng(8)
    theta = np.zeros(10)
    pairs = tuple((0, j) for j in range(1, 10) for _ in range(6))
    pairs += tuple(
        (i, j) if k % 2 else (j, i)
        for i in range(1, 10)
        for j in range(i + 1, 10)
        for k in range(2)
    )
    outcomes = simulate(theta, pairs, 1.0, rng)

    fit = fit_order_effect(10, outcomes)
    plain = fit_bradley_terry(10, [(a, b) if w else (b, a) for a, b, w in outcomes])

    assert fit.order_effect == pytest.approx(1.0, abs=3 * fit.standard_error)
    assert plain.scores[0] > 0.5
    assert abs(fit.scores[0]) < 3 * plain.standard_errors[0]
    assert abs(fit.scores[0]) < plain.scores[0] / 2


# --- the estimate is the mode it claims to be, the SE the curvature there --------------------


def mode_of(scores: tuple[float, ...], gamma: float, alpha: float) -> np.ndarray:
    """Undo the centring: the thetas sit where the sum of the phantom terms' gradient is 0."""
    centred = np.array(scores)
    shift = brentq(lambda s: float(np.sum(1.0 - 2.0 * expit(centred + s))), -10.0, 10.0)
    return np.append(centred + shift, gamma)


def test_estimate_is_the_mode_and_the_standard_error_the_inverse_curvature() -> None:
    rng = np.random.default_rng(4)
    theta = rng.normal(0.0, 1.0, size=8)
    pairs = tuple((i, j) if (i + j) % 2 else (j, i) for i in range(8) for j in range(i + 1, 8))
    outcomes = simulate(theta, pairs * 3, 0.4, rng)
    alpha = 0.3

    fit = fit_order_effect(8, outcomes, alpha=alpha)

    x = mode_of(fit.scores, fit.order_effect, alpha)
    assert np.max(np.abs(log_posterior_gradient(x[:-1], x[-1], outcomes, alpha))) < 1e-7
    # Observed information by finite differences of the independent gradient.
    information = -np.array(
        [
            approx_fprime(
                x, lambda y, k=k: log_posterior_gradient(y[:-1], y[-1], outcomes, alpha)[k], 1e-6
            )
            for k in range(len(x))
        ]
    )
    variance = np.linalg.inv(information)[-1, -1]
    assert fit.standard_error == pytest.approx(math.sqrt(variance), rel=1e-4)
    # The joint inverse, not 1 / H_gg: uncertainty in the scores widens the interval.
    assert fit.standard_error > 1.0 / math.sqrt(information[-1, -1])


# --- degenerate data ------------------------------------------------------------------------


def test_no_outcomes_gives_zero_and_the_prior_standard_error() -> None:
    fit = fit_order_effect(3, [])
    assert fit.order_effect == 0.0
    assert fit.scores == (0.0, 0.0, 0.0)
    # Only the prior: information 2 alpha sigmoid(0) sigmoid(0) = alpha / 2.
    assert fit.standard_error == pytest.approx(math.sqrt(2.0 / DEFAULT_ALPHA))
    assert fit.p_value == 1.0
    assert not fit.significant


def test_slot_a_winning_every_comparison_gives_a_finite_significant_effect() -> None:
    outcomes = [(i, j, True) for i in range(6) for j in range(6) if i != j]
    fit = fit_order_effect(6, outcomes)
    assert math.isfinite(fit.order_effect) and fit.order_effect > 2.0
    assert math.isfinite(fit.standard_error) and fit.significant
    np.testing.assert_allclose(fit.scores, 0.0, atol=1e-8)


def test_significance_level_is_a_parameter() -> None:
    rng = np.random.default_rng(21)
    theta = rng.normal(0.0, 1.0, size=N_ESSAYS)
    outcomes = simulate(theta, balanced_design(0), 0.2, rng)
    strict = fit_order_effect(N_ESSAYS, outcomes, significance_level=1e-12)
    lenient = fit_order_effect(N_ESSAYS, outcomes, significance_level=0.999)
    assert strict.p_value == lenient.p_value
    assert not strict.significant and lenient.significant
    assert lenient.significance_level == 0.999


def test_accepts_numpy_indices_and_booleans() -> None:
    outcomes = [(np.int64(0), np.int64(1), np.bool_(True)), (np.int32(1), np.int32(2), True)]
    fit = fit_order_effect(3, outcomes)  # type: ignore[arg-type]  # numpy scalars on purpose
    assert fit.scores[0] > fit.scores[1] > fit.scores[2]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [0, 1, 2.0, True])
def test_rejects_fewer_than_two_essays_or_a_non_integer_count(n_items: object) -> None:
    with pytest.raises(ValueError, match="n_items"):
        fit_order_effect(n_items, [])  # type: ignore[arg-type]  # deliberately wrong type


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ([(0, 1, True), (1, 3, False)], r"outcomes\[1\] has slot B index 3"),
        ([(-1, 0, True)], r"outcomes\[0\] has slot A index -1"),
        ([(0, 1, True), (2, 2, True)], r"outcomes\[1\] compares essay 2 with itself"),
        ([(0, 1)], r"outcomes\[0\] must be a \(slot_a_index, slot_b_index, a_won\) triple"),
        ([(0, 1, 1)], r"outcomes\[0\] has a_won 1, not a bool"),
        ([(0, 1, True), (0, 2, "yes")], r"outcomes\[1\] has a_won 'yes'"),
        ([(True, 1, True)], r"outcomes\[0\] has slot A index True"),
        ([(0.0, 1, True)], r"outcomes\[0\] has slot A index 0.0"),
    ],
)
def test_rejects_bad_outcomes_naming_the_first_one(outcomes: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_order_effect(3, outcomes)  # type: ignore[arg-type]  # deliberately wrong type


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.nan, math.inf])
def test_rejects_a_regularisation_that_is_not_positive(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        fit_order_effect(3, [(0, 1, True)], alpha=alpha)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, math.nan, True])
def test_rejects_a_significance_level_outside_zero_one(level: float) -> None:
    with pytest.raises(ValueError, match="significance_level"):
        fit_order_effect(3, [(0, 1, True)], significance_level=level)
