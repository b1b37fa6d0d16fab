"""Empirical-Bayes reliability of Bradley-Terry scores: honest under adaptive pairing.

Why not SSR. The scale separation reliability (``scale_separation_reliability``) compares the
observed spread of the estimates with their standard errors. Adaptive pairing makes the
estimates spread out even when every essay is equally good, so SSR reports 0.6-0.7 for pure
noise after 10 comparisons per essay (Bramley & Vitello, 2019, "The effect of adaptivity on
the reliability coefficient in adaptive comparative judgement", Assessment in Education
26(1), 43-58; measured here in bench/reliability_calibration.py).

The model. Abilities are drawn from ``theta_i ~ N(0, tau^2)`` and essay i beats j with
probability ``sigmoid(theta_i - theta_j)``. The ability variance ``tau^2`` is estimated by
maximising the marginal likelihood ``p(y | tau^2)`` (parametric empirical Bayes: Morris,
1983, "Parametric empirical Bayes inference: theory and applications", JASA 78(381),
47-55), computed with the Laplace approximation (Tierney & Kadane, 1986, JASA 81(393),
82-86)::

    log p(y | tau^2) ~ l(theta*) - |theta*|^2 / (2 tau^2) - n/2 log tau^2 - 1/2 log det H

where ``theta*`` is the posterior mode for that ``tau^2``, ``l`` the Bradley-Terry
log-likelihood and ``H = L + I / tau^2`` the posterior precision (``L`` the Laplacian of the
comparison graph weighted by ``p (1 - p)``, as in bradley_terry.py).

The reliability is the share of the ability variance that the data pin down, the marginal
(posterior, "EAP") reliability of item response theory (Bock & Mislevy, 1982, Applied
Psychological Measurement 6(4), 431-444)::

    reliability = 1 - mean_i Var(theta_i - mean(theta) | y) / (tau^2 (n - 1) / n)

Under the model, ``Var(theta) = E[Var(theta | y)] + Var(E[theta | y])`` holds for ANY pairing
rule that depends only on answers already seen (the design is ignorable for likelihood
inference: Rubin, 1976, "Inference and missing data", Biometrika 63(3), 581-592), so the
expression is the expected squared correlation of the posterior means with the true
abilities, with or without adaptivity. When the essays do not differ, the marginal likelihood
is highest at ``tau^2`` near 0 and the reliability is near 0.

Calibration, by simulation with known truth (docs/scoring.md, bench/reliability_calibration.py):
with the operator's pairing (4 non-adaptive rounds first, then every third round
non-adaptive: `cj_operator.planning`) the mean reported value stays below 0.1 when nothing
differs and tracks the true reliability at ability SDs 0.75-3 logits; with very few
comparisons of close essays it errs low (conservative), because ``tau^2`` is then hard to tell
from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special
from numpy.typing import NDArray

__all__ = ["EmpiricalBayesReliability", "empirical_bayes_reliability"]

LOG_VARIANCE_BOUNDS = (-9.0, 5.0)
"""Search range of ``log tau^2``: ability SDs from 0.011 to 12 logits. The lower end stands
for "no spread" (reliability ~0), the upper end is far beyond essay quality differences
(an SD of 5 logits already means near-certain outcomes between typical essays)."""

_NEWTON_TOLERANCE = 1e-8
_NEWTON_MAX_ITERATIONS = 100
_SEARCH_TOLERANCE = 1e-2
"""Brent's search on ``log tau^2`` stops within 0.01 (1% of ``tau^2``): the reliability then
moves by less than 0.005."""


@dataclass(frozen=True)
class EmpiricalBayesReliability:
    """Result of :func:`empirical_bayes_reliability`.

    Attributes:
        reliability: marginal reliability in [0, 1] (module docstring).
        ability_variance: the estimated ``tau^2`` (logits squared), > 0.
        mean_posterior_variance: mean posterior variance of the centred abilities
            (logits squared) at that ``tau^2``.
    """

    reliability: float
    ability_variance: float
    mean_posterior_variance: float


def empirical_bayes_reliability(
    n_items: int, winners: NDArray[np.intp], losers: NDArray[np.intp]
) -> EmpiricalBayesReliability:
    """Estimate the ability variance by marginal likelihood and the marginal reliability.

    Args:
        n_items: number of essays, >= 2.
        winners, losers: equal-length index arrays, one entry per comparison with a winner
            (already validated: indices in ``range(n_items)``, winner != loser). May be empty.

    Returns:
        An :class:`EmpiricalBayesReliability`; with no comparisons the reliability is 0.

    Raises:
        ValueError: ``n_items`` < 2 or the arrays differ in length.

    Cost: about 15 posterior modes (Newton, warm-started, dense ``n x n`` Cholesky each),
    so O(n^3) per mode; see bench/bt_scale.py.
    """
    if n_items < 2:
        raise ValueError(f"n_items must be >= 2, got {n_items}")
    if len(winners) != len(losers):
        raise ValueError(f"winners and losers differ in length ({len(winners)}, {len(losers)})")
    low, high = LOG_VARIANCE_BOUNDS
    if len(winners) == 0:
        return EmpiricalBayesReliability(0.0, math.exp(low), math.exp(low))
    start = np.zeros(n_items)

    def negative_log_marginal(log_variance: float) -> float:
        nonlocal start
        mode = _posterior_mode(n_items, winners, losers, math.exp(log_variance), start)
        start = mode.theta
        return -mode.log_marginal

    search = scipy.optimize.minimize_scalar(
        negative_log_marginal,
        bounds=(low, high),
        method="bounded",
        options={"xatol": _SEARCH_TOLERANCE},
    )
    candidates = [float(search.x), low]
    best = min(candidates, key=negative_log_marginal)
    variance = math.exp(best)
    mode = _posterior_mode(n_items, winners, losers, variance, start)
    covariance: NDArray[np.float64] = scipy.linalg.cho_solve(
        mode.cholesky, np.eye(n_items), check_finite=False
    )
    # mean_i Var(theta_i - mean theta) = (trace(S) - 1'S1 / n) / n
    centred_variance = float((np.trace(covariance) - covariance.sum() / n_items) / n_items)
    prior_centred = variance * (n_items - 1) / n_items
    reliability = min(1.0, max(0.0, 1.0 - centred_variance / prior_centred))
    return EmpiricalBayesReliability(reliability, variance, centred_variance)


@dataclass(frozen=True)
class _Mode:
    theta: NDArray[np.float64]
    log_marginal: float
    cholesky: tuple[NDArray[np.float64], bool]


def _posterior_mode(
    n_items: int,
    winners: NDArray[np.intp],
    losers: NDArray[np.intp],
    variance: float,
    start: NDArray[np.float64],
) -> _Mode:
    """Newton's method on the (concave) log-posterior for prior variance ``variance``; the
    Laplace log marginal likelihood at the mode (module docstring)."""
    theta = start.copy()
    for _ in range(_NEWTON_MAX_ITERATIONS):
        precision, gradient = _precision_and_gradient(n_items, winners, losers, variance, theta)
        factor = scipy.linalg.cho_factor(precision, lower=True, check_finite=False)
        step = scipy.linalg.cho_solve(factor, gradient, check_finite=False)
        theta = theta + step
        if float(np.max(np.abs(step))) < _NEWTON_TOLERANCE:
            break
    precision, _ = _precision_and_gradient(n_items, winners, losers, variance, theta)
    factor = scipy.linalg.cho_factor(precision, lower=True, check_finite=False)
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    log_likelihood = float(np.sum(scipy.special.log_expit(theta[winners] - theta[losers])))
    log_marginal = (
        log_likelihood
        - float(theta @ theta) / (2.0 * variance)
        - 0.5 * n_items * math.log(variance)
        - 0.5 * log_det
    )
    return _Mode(theta, log_marginal, factor)


def _precision_and_gradient(
    n_items: int,
    winners: NDArray[np.intp],
    losers: NDArray[np.intp],
    variance: float,
    theta: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Posterior precision ``L + I / tau^2`` and the gradient of the log-posterior."""
    p_win = scipy.special.expit(theta[winners] - theta[losers])
    surprise = 1.0 - p_win
    gradient = (
        np.bincount(winners, surprise, n_items)
        - np.bincount(losers, surprise, n_items)
        - theta / variance
    )
    weight = p_win * surprise
    precision = np.zeros((n_items, n_items))
    np.add.at(precision, (winners, losers), -weight)
    np.add.at(precision, (losers, winners), -weight)
    precision[np.diag_indices(n_items)] = -precision.sum(axis=1) + 1.0 / variance
    return precision, gradient
