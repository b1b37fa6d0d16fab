"""Bradley-Terry fit of pairwise outcomes: centred scores, standard errors, reliabilities.

Model (Bradley & Terry, 1952, Biometrika 39(3/4), 324-345): essay ``i`` beats essay ``j``
with probability ``sigmoid(theta_i - theta_j)``, where ``theta`` is a log-strength (logit
scale). Only differences are identified, so scores are reported centred to mean 0.

Regularisation. Maximum likelihood has no finite solution when the comparison graph is not
strongly connected (Ford, 1957, American Mathematical Monthly 64(8), 28-33; Hunter, 2004,
Annals of Statistics 32(1), 384-406): an essay that won every comparison would get +inf.
We therefore give every essay ``alpha`` virtual wins and ``alpha`` virtual losses against
a phantom essay of fixed score 0, the same device as the prior of Coulom's Whole-History
Rating (2008, Computers and Games, LNCS 5131). This is a proper, log-concave prior
``alpha * log(sigmoid(theta) * sigmoid(-theta))`` per essay: the posterior mode exists and
is unique for any data, and its weight relative to the real comparisons shrinks as they
accumulate. The mode is computed by choix's I-LSR (Maystre & Grossglauser, 2015, "Fast and
accurate inference of Plackett-Luce models", NIPS) on the augmented comparison matrix; with
the phantom every essay is linked to every other, so I-LSR's Markov chain is irreducible.

Standard errors. The observed information of the log-posterior at the mode is
``H = L + D``: ``L`` the Laplacian of the comparison graph with edge weights
``n_ij p_ij (1 - p_ij)`` (the Fisher information of the Bradley-Terry likelihood, which for
this logistic model equals the observed information) and ``D`` the diagonal
``2 alpha sigmoid(theta_i) sigmoid(-theta_i)`` of the phantom games. The covariance of the
centred scores ``C theta`` (``C = I - 11'/n``) is ``C H^-1 C`` (Laplace approximation), whose
diagonal gives each SE. No essay serves as a reference, so none gets SE 0. With a connected
graph and ``alpha -> 0`` this tends to the usual ML result, the Moore-Penrose inverse of the
Fisher information under the sum-to-zero constraint.

Reliability. The fit reports two: ``reliability``, the empirical-Bayes marginal reliability
of `cj_operator.scoring.reliability` (honest under adaptive pairing; it stops batches), and
``ssr``, the scale separation reliability, kept because CJ tools report it (it is inflated by
adaptive pairing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import choix
import numpy as np
import scipy.linalg
import scipy.special
from numpy.typing import NDArray

from cj_operator.scoring.indices import essay_pair
from cj_operator.scoring.reliability import empirical_bayes_reliability

__all__ = [
    "DEFAULT_ALPHA",
    "BradleyTerryFit",
    "fit_bradley_terry",
    "scale_separation_reliability",
]

DEFAULT_ALPHA = 1.0
"""Virtual wins (and as many virtual losses) per essay against the phantom essay of score 0.

One virtual win and one virtual loss is the prior of Whole-History Rating (Coulom, 2008). It
adds at most ``alpha / 2 = 0.5`` to an essay's information, about two real comparisons of
close essays (``p (1 - p)`` <= 0.25 each). In the seeded simulations of
``bench/bt_recovery.py`` with adaptive pairing (docs/scoring.md) it recovers known abilities
with a clearly lower RMSE than 0.5 or 0.1 at equal rank correlation, and the reported
reliability no longer overstates the true one; smaller values let the scale of the scores
inflate (maximum likelihood overstates spread when comparisons are few).
"""

_ILSR_TOLERANCE = 1e-7
"""choix I-LSR stops when the mean absolute change of the centred scores falls below this.
Measured distance to the exact mode: 3e-7 to 2e-6 logits on random and perfectly ordered
data, 9e-5 in a degenerate batch where one pair holds all 5,000 comparisons."""
_ILSR_MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class BradleyTerryFit:
    """Result of :func:`fit_bradley_terry`, in the essays' index order.

    Attributes:
        scores: log-strength per essay (logits), centred to mean 0.
        standard_errors: per essay, posterior standard deviation of the centred score
            (logits); always finite and > 0.
        reliability: empirical-Bayes marginal reliability in [0, 1]; None with no outcomes
            (see `cj_operator.scoring.reliability`).
        ssr: scale separation reliability of the scores, in [0, 1); None when undefined
            (all scores equal), see :func:`scale_separation_reliability`.
        ability_variance: the empirical-Bayes estimate of the essays' ability variance
            (logits squared); None with no outcomes.
    """

    scores: tuple[float, ...]
    standard_errors: tuple[float, ...]
    reliability: float | None
    ssr: float | None = None
    ability_variance: float | None = None


def fit_bradley_terry(
    n_items: int,
    outcomes: Sequence[tuple[int, int]],
    alpha: float = DEFAULT_ALPHA,
) -> BradleyTerryFit:
    """Fit Bradley-Terry scores, standard errors and reliability to pairwise outcomes.

    Args:
        n_items: number of essays, >= 2; essays are indices ``0 .. n_items - 1``.
        outcomes: one ``(winner_index, loser_index)`` per successful comparison, in any
            order; repeats are allowed and count as separate comparisons. May be empty.
        alpha: virtual wins and virtual losses per essay against a phantom essay of score 0
            (see the module docstring), > 0. Larger values shrink scores towards 0.

    Returns:
        A :class:`BradleyTerryFit` with ``n_items`` scores (centred, logits), their standard
        errors, the empirical-Bayes reliability and the scale separation reliability. With no
        outcomes every score is 0 and both reliabilities are None.

    Raises:
        ValueError: ``n_items`` < 2, ``alpha`` not a finite positive number, or an outcome
            that is not a pair of two different indices in ``range(n_items)`` (the message
            names the position of the first bad outcome).
        RuntimeError: choix's I-LSR did not converge (not observed; it would mean a numerical
            problem rather than bad input).

    Cost: O(n^3) time and O(n^2) memory in the number of essays (dense I-LSR, the
    covariance and the empirical-Bayes search), O(len(outcomes)) in the comparisons; see
    bench/bt_scale.py for timings.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2, got {n_items!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    winners, losers = _outcome_arrays(n_items, outcomes)

    comparison_matrix = _augmented_comparison_matrix(n_items, winners, losers, alpha)
    params = choix.ilsr_pairwise_dense(
        comparison_matrix, alpha=0.0, max_iter=_ILSR_MAX_ITERATIONS, tol=_ILSR_TOLERANCE
    )
    theta = np.asarray(params[:n_items] - params[n_items], dtype=np.float64)

    information = _information_matrix(theta, winners, losers, alpha)
    standard_errors = _centred_standard_errors(information)
    scores = theta - theta.mean()
    score_tuple = tuple(float(s) for s in scores)
    se_tuple = tuple(float(s) for s in standard_errors)
    empirical = empirical_bayes_reliability(n_items, winners, losers) if len(winners) else None
    return BradleyTerryFit(
        scores=score_tuple,
        standard_errors=se_tuple,
        reliability=None if empirical is None else empirical.reliability,
        ssr=scale_separation_reliability(score_tuple, se_tuple),
        ability_variance=None if empirical is None else empirical.ability_variance,
    )


def scale_separation_reliability(
    scores: Sequence[float], standard_errors: Sequence[float]
) -> float | None:
    """Scale separation reliability (SSR) of estimated scores.

    ``SSR = (observed variance - mean squared SE) / observed variance``: the share of the
    observed spread of the scores that is not measurement error. It is Wright & Masters'
    separation reliability ``G^2 / (1 + G^2)`` (Rating Scale Analysis, 1982), used for
    comparative judgement by Pollitt (2012, Assessment in Education 19(3), 281-300) and
    Bramley (2015, "Investigating the reliability of Adaptive Comparative Judgment",
    Cambridge Assessment Research Report). The observed variance is the sample variance
    (``n - 1`` denominator). Note that adaptive pairing inflates SSR (Bramley & Vitello,
    2019, Assessment in Education 26(1), 43-58).

    Args:
        scores: one score per essay (logits), at least 2 for a defined value.
        standard_errors: the same number of standard errors (logits), each finite and >= 0.

    Returns:
        A value in [0, 1): 0 when the error variance is at least the observed variance
        (the essays are not separated at all); None when fewer than 2 scores are given or
        all scores are equal (no observed spread to separate).

    Raises:
        ValueError: the sequences differ in length, a value is not finite, or an SE is < 0.
    """
    if len(scores) != len(standard_errors):
        raise ValueError(
            f"scores and standard_errors differ in length ({len(scores)} and "
            f"{len(standard_errors)})"
        )
    values = np.asarray(scores, dtype=np.float64)
    errors = np.asarray(standard_errors, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must all be finite numbers")
    if not np.all(np.isfinite(errors)) or np.any(errors < 0):
        raise ValueError("standard_errors must all be finite numbers >= 0")
    if len(values) < 2:
        return None
    observed_variance = float(np.var(values, ddof=1))
    if observed_variance <= 0.0:
        return None
    error_variance = float(np.mean(errors**2))
    return max(0.0, (observed_variance - error_variance) / observed_variance)


def _outcome_arrays(
    n_items: int, outcomes: Sequence[tuple[int, int]]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Winner and loser index arrays; raises ValueError naming the first bad outcome."""
    winners = np.empty(len(outcomes), dtype=np.intp)
    losers = np.empty(len(outcomes), dtype=np.intp)
    for position, outcome in enumerate(outcomes):
        try:
            winner, loser = outcome
        except (TypeError, ValueError):
            raise ValueError(
                f"outcomes[{position}] must be a (winner_index, loser_index) pair, got {outcome!r}"
            ) from None
        winners[position], losers[position] = essay_pair(
            n_items, f"outcomes[{position}]", ("winner", "loser"), outcome, winner, loser
        )
    return winners, losers


def _augmented_comparison_matrix(
    n_items: int, winners: NDArray[np.intp], losers: NDArray[np.intp], alpha: float
) -> NDArray[np.float64]:
    """(n+1) x (n+1) win counts, ``[i, j]`` = times i beat j; the last row/column is the
    phantom essay, beaten ``alpha`` times by and beating ``alpha`` times every real essay."""
    matrix = np.zeros((n_items + 1, n_items + 1), dtype=np.float64)
    np.add.at(matrix, (winners, losers), 1.0)
    matrix[:n_items, n_items] = alpha
    matrix[n_items, :n_items] = alpha
    return matrix


def _information_matrix(
    theta: NDArray[np.float64],
    winners: NDArray[np.intp],
    losers: NDArray[np.intp],
    alpha: float,
) -> NDArray[np.float64]:
    """Observed information of the log-posterior at ``theta``: Laplacian of the comparison
    graph weighted by ``n_ij p_ij (1 - p_ij)`` plus the phantom games' diagonal."""
    n_items = len(theta)
    counts = np.zeros((n_items, n_items), dtype=np.float64)
    np.add.at(counts, (winners, losers), 1.0)
    counts += counts.T
    win_probability = _sigmoid(theta[:, None] - theta[None, :])
    weights = counts * win_probability * (1.0 - win_probability)
    information = -weights
    phantom = 2.0 * alpha * _sigmoid(theta) * _sigmoid(-theta)
    information[np.diag_indices(n_items)] = weights.sum(axis=1) + phantom
    return information


def _centred_standard_errors(information: NDArray[np.float64]) -> NDArray[np.float64]:
    """Square roots of the diagonal of ``C H^-1 C`` with ``C = I - 11'/n``.

    ``(C H^-1 C)_ii = (H^-1)_ii - 2 mean_j (H^-1)_ij + mean_jk (H^-1)_jk``.
    """
    n_items = information.shape[0]
    factor = scipy.linalg.cho_factor(information, lower=True, check_finite=False)
    inverse: NDArray[np.float64] = scipy.linalg.cho_solve(
        factor, np.eye(n_items), check_finite=False
    )
    variances = np.diag(inverse) - 2.0 * inverse.mean(axis=1) + inverse.mean()
    # The centred covariance is positive semi-definite; clip rounding noise only.
    standard_errors: NDArray[np.float64] = np.sqrt(
        np.clip(variances, np.finfo(np.float64).tiny, None)
    )
    return standard_errors


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow warnings."""
    result: NDArray[np.float64] = scipy.special.expit(x)
    return result
