"""Bradley-Terry with an order effect: does the judge favour the essay shown in slot A?

Model. The essay in slot A beats the essay in slot B with probability
``sigmoid(theta_a - theta_b + gamma)``: ``theta`` are the essays' log-strengths (logits, as in
:mod:`cj_operator.scoring.bradley_terry`) and ``gamma`` is an order effect in logits, positive
when slot A is favoured. It is the Bradley-Terry model with a home-team advantage (Agresti,
2002, Categorical Data Analysis, 2nd ed., Wiley, section 10.6, "Bradley-Terry model for
paired preferences"), the logistic form of the within-pair order effect of Davidson & Beaver
(1977, "On extending the Bradley-Terry model to incorporate within-pair order effects",
Biometrics 33(4), 693-702). ``gamma = 0.5`` means that two equal essays go to slot A
``sigmoid(0.5) = 62%`` of the time. choix has no such model, so the log-posterior, its
gradient and its Hessian are written here and maximised with scipy.

Regularisation. As in :func:`~cj_operator.scoring.bradley_terry.fit_bradley_terry`, every
essay gets ``alpha`` virtual wins and ``alpha`` virtual losses against a phantom essay of
score 0 (Coulom, 2008, Whole-History Rating). Those games have no slot, so they do not
involve ``gamma``. ``gamma`` itself is unbounded when every real comparison went to the same
slot; it gets the same device: ``alpha`` virtual slot-A wins and ``alpha`` virtual slot-B
wins between equal essays, the prior ``alpha * log(sigmoid(gamma) sigmoid(-gamma))``. The
log-posterior is then strictly concave and has a unique, finite mode for any data. The
prior on ``gamma`` adds ``alpha / 2`` to its information, against about ``0.2`` per real
comparison, so it matters only in a nearly empty batch.

Standard error and test. The observed information ``H`` of the joint ``(theta, gamma)`` at
the mode (the negative Hessian of the log-posterior; for this logistic model it equals the
Fisher information, as in :mod:`~cj_operator.scoring.bradley_terry`) gives the Laplace
approximation of the posterior, ``N(mode, H^-1)``, which is also the large-sample
distribution of the maximum-likelihood estimate (inverse Fisher information; Agresti, 2002,
section 1.3, Wald inference). The standard error of ``gamma`` is ``sqrt((H^-1)_gg)``, the
entry of the joint inverse (not ``1 / H_gg``), so the uncertainty of the scores is
accounted for. ``z = gamma / se`` is referred to the standard normal: a two-sided Wald
test of ``gamma = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special
from numpy.typing import NDArray

from cj_operator.scoring.bradley_terry import DEFAULT_ALPHA
from cj_operator.scoring.indices import essay_pair

__all__ = [
    "SIGNIFICANCE_LEVEL",
    "OrderEffectFit",
    "fit_order_effect",
]

_SLOTS = ("slot A", "slot B")

SIGNIFICANCE_LEVEL = 0.01
"""Two-sided p value below which an order effect is reported as significant.

Stricter than the conventional 0.05 because the check runs on every batch: at 0.05 one
batch in twenty of an unbiased judge would be reported as biased. The p value is calibrated:
in the seeded simulations of ``tests/unit/operator/test_order_effect.py`` (60 essays, ~20
comparisons each, balanced slots) an unbiased judge gives p < 0.05 in 4.5% of 200 runs
(4.8% of 1,200) and p < 0.01 in 0.5% (1.0%); a judge with ``gamma = 0.5`` is significant at
0.01 in 99.8% of 1,200 runs (standard error about 0.1 logits)."""

_OPTIMISER_GRADIENT_TOLERANCE = 1e-6
"""scipy's trust-region Newton-CG stops when the gradient's Euclidean norm falls below this.
Smaller values are not reached reliably: the change of the objective (a few hundred, in
units of log-posterior) then falls below float64 rounding and the trust region fails."""
_GRADIENT_TOLERANCE = 1e-9
"""Newton steps with the dense Hessian then polish the mode until the gradient norm is below
this (one step from 1e-6 suffices: Newton converges quadratically); the distance to the
exact mode is then about ``1e-9`` divided by the information's smallest eigenvalue."""
_MAX_ITERATIONS = 200
_MAX_POLISH_STEPS = 3


@dataclass(frozen=True)
class OrderEffectFit:
    """Result of :func:`fit_order_effect`, scores in the essays' index order.

    Attributes:
        order_effect: ``gamma`` at the posterior mode (logits); > 0 when the judge favours
            the essay in slot A.
        standard_error: posterior standard deviation of ``gamma`` (logits), from the
            observed information of the joint ``(theta, gamma)``; finite and > 0.
        z: ``order_effect / standard_error``.
        p_value: two-sided p value of the Wald test of ``gamma = 0``, in [0, 1].
        significant: ``p_value < significance_level``.
        significance_level: the level used (default :data:`SIGNIFICANCE_LEVEL`).
        scores: log-strength per essay (logits), centred to mean 0, with the order effect
            taken out.
    """

    order_effect: float
    standard_error: float
    z: float
    p_value: float
    significant: bool
    significance_level: float
    scores: tuple[float, ...]


def fit_order_effect(
    n_items: int,
    outcomes: Sequence[tuple[int, int, bool]],
    alpha: float = DEFAULT_ALPHA,
    significance_level: float = SIGNIFICANCE_LEVEL,
) -> OrderEffectFit:
    """Fit Bradley-Terry scores together with an order effect for slot A, and test it.

    Args:
        n_items: number of essays, >= 2; essays are indices ``0 .. n_items - 1``.
        outcomes: one ``(slot_a_index, slot_b_index, a_won)`` per successful comparison, in
            any order; ``a_won`` is True when the essay in slot A won. Repeats are allowed
            and count as separate comparisons. May be empty (then every value is 0 or the
            prior's, and the p value is 1).
        alpha: virtual wins and losses per essay against the phantom essay of score 0, and
            virtual slot-A and slot-B wins for ``gamma`` (module docstring), > 0; the same
            default as :func:`~cj_operator.scoring.bradley_terry.fit_bradley_terry`, so with
            no order effect in the data the scores of the two fits are close.
        significance_level: level of the two-sided test, in (0, 1).

    Returns:
        An :class:`OrderEffectFit`: the order effect, its standard error, z, p value,
        whether it is significant, and the ``n_items`` centred scores.

    Raises:
        ValueError: ``n_items`` < 2, ``alpha`` not a finite positive number,
            ``significance_level`` outside (0, 1), or an outcome that is not
            ``(index, other index, bool)`` with two different indices in ``range(n_items)``
            (the message names the position of the first bad outcome).
        RuntimeError: the optimiser did not reach the mode (not observed; the objective is
            smooth and strictly convex, so it would mean a numerical problem).

    Cost: each optimiser step is O(len(outcomes) + n) (Hessian-vector products, no dense
    Hessian); polishing the mode and the standard error take two or three dense Cholesky
    factorisations of the ``(n + 1) x (n + 1)`` information, O(n^3) time and O(n^2)
    memory, like the standard errors of ``fit_bradley_terry``. Measured on the 2-core
    development machine: 1.4 s for 2,000 essays and 20,000 comparisons (``fit_bradley_terry``
    6.4 s on the same data).
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2, got {n_items!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if not (
        isinstance(significance_level, int | float)
        and not isinstance(significance_level, bool)
        and 0.0 < significance_level < 1.0
    ):
        raise ValueError(f"significance_level must be in (0, 1), got {significance_level!r}")
    posterior = _LogPosterior(_outcome_arrays(n_items, outcomes), alpha)

    mode, information = posterior.mode()
    theta, gamma = mode[:n_items], float(mode[n_items])
    standard_error = _order_effect_standard_error(information)
    z = gamma / standard_error
    p_value = float(math.erfc(abs(z) / math.sqrt(2.0)))
    scores = theta - theta.mean()
    return OrderEffectFit(
        order_effect=gamma,
        standard_error=standard_error,
        z=z,
        p_value=p_value,
        significant=p_value < significance_level,
        significance_level=float(significance_level),
        scores=tuple(float(s) for s in scores),
    )


@dataclass(frozen=True)
class _Outcomes:
    """Outcomes as arrays: slot A index, slot B index, 1.0 when A won else 0.0."""

    n_items: int
    slot_a: NDArray[np.intp]
    slot_b: NDArray[np.intp]
    a_won: NDArray[np.float64]


def _outcome_arrays(n_items: int, outcomes: Sequence[tuple[int, int, bool]]) -> _Outcomes:
    """Validated arrays; raises ValueError naming the first bad outcome."""
    slot_a = np.empty(len(outcomes), dtype=np.intp)
    slot_b = np.empty(len(outcomes), dtype=np.intp)
    a_won = np.empty(len(outcomes), dtype=np.float64)
    for position, outcome in enumerate(outcomes):
        try:
            a, b, won = outcome
        except (TypeError, ValueError):
            raise ValueError(
                f"outcomes[{position}] must be a (slot_a_index, slot_b_index, a_won) "
                f"triple, got {outcome!r}"
            ) from None
        a, b = essay_pair(n_items, f"outcomes[{position}]", _SLOTS, outcome, a, b)
        if not isinstance(won, bool | np.bool_):
            raise ValueError(
                f"outcomes[{position}] has a_won {won!r}, not a bool (True when the essay in "
                f"slot A won)"
            )
        slot_a[position] = a
        slot_b[position] = b
        a_won[position] = 1.0 if won else 0.0
    return _Outcomes(n_items, slot_a, slot_b, a_won)


class _LogPosterior:
    """Negative log-posterior of ``x = (theta_0 .. theta_{n-1}, gamma)``, its gradient,
    Hessian-vector products and dense Hessian (the observed information)."""

    def __init__(self, data: _Outcomes, alpha: float) -> None:
        self._data = data
        self._alpha = alpha
        self._n = data.n_items

    def mode(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The posterior mode and the observed information there.

        Trust-region Newton-CG (scipy) from 0 with exact gradient and Hessian-vector
        products, then Newton steps with the dense Hessian (module constants).

        Raises:
            RuntimeError: the gradient did not fall below ``_GRADIENT_TOLERANCE``.
        """
        solution = scipy.optimize.minimize(
            self.objective,
            np.zeros(self._n + 1, dtype=np.float64),
            method="trust-ncg",
            jac=self.gradient,
            hessp=self.hessian_product,
            options={"gtol": _OPTIMISER_GRADIENT_TOLERANCE, "maxiter": _MAX_ITERATIONS},
        )
        x = np.asarray(solution.x, dtype=np.float64)
        for _ in range(_MAX_POLISH_STEPS + 1):
            information = self.hessian(x)
            gradient = self.gradient(x)
            if not np.all(np.isfinite(x)):
                break
            if np.linalg.norm(gradient) <= _GRADIENT_TOLERANCE:
                return x, information
            factor = scipy.linalg.cho_factor(information, lower=True, check_finite=False)
            x = x - scipy.linalg.cho_solve(factor, gradient, check_finite=False)
        raise RuntimeError(
            f"order-effect fit did not converge (gradient norm "
            f"{np.linalg.norm(self.gradient(x)):.3g}): {solution.message}"
        )

    def objective(self, x: NDArray[np.float64]) -> float:
        """``-sum_k log P(outcome_k) - alpha sum log(sigmoid(t) sigmoid(-t))`` over the
        thetas and gamma (module docstring)."""
        theta, gamma = x[: self._n], x[self._n]
        eta = self._eta(x)
        # -log sigmoid(eta) = logaddexp(0, -eta); -log sigmoid(-eta) = logaddexp(0, eta).
        data_term = np.where(
            self._data.a_won > 0.5, np.logaddexp(0.0, -eta), np.logaddexp(0.0, eta)
        ).sum()
        prior = np.logaddexp(0.0, -theta).sum() + np.logaddexp(0.0, theta).sum()
        prior += np.logaddexp(0.0, -gamma) + np.logaddexp(0.0, gamma)
        return float(data_term + self._alpha * prior)

    def gradient(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Gradient of :meth:`objective`, shape ``(n + 1,)``."""
        residual = self._data.a_won - _sigmoid(self._eta(x))
        result = self._alpha * (2.0 * _sigmoid(x) - 1.0)
        np.subtract.at(result, self._data.slot_a, residual)
        np.add.at(result, self._data.slot_b, residual)
        result[self._n] -= residual.sum()
        return result

    def hessian_product(
        self, x: NDArray[np.float64], vector: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """``H(x) @ vector`` in O(len(outcomes) + n), without forming ``H``."""
        p = _sigmoid(self._eta(x))
        # d eta_k = v_a - v_b + v_gamma; H v = sum_k w_k (d eta_k) (e_a - e_b + e_gamma) + prior.
        flow = p * (1.0 - p) * self._eta(vector)
        s = _sigmoid(x)
        result = 2.0 * self._alpha * s * (1.0 - s) * vector
        np.add.at(result, self._data.slot_a, flow)
        np.subtract.at(result, self._data.slot_b, flow)
        result[self._n] += flow.sum()
        return result

    def hessian(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Dense ``(n + 1, n + 1)`` Hessian: the observed information of ``(theta, gamma)``.

        The theta block is the Laplacian of the comparison graph with weights
        ``p (1 - p)`` plus the phantom's diagonal ``2 alpha s (1 - s)``; the theta-gamma
        entries are ``+w`` for the essay in slot A and ``-w`` for slot B; the gamma entry is
        ``sum w`` plus the prior's ``2 alpha s (1 - s)``.
        """
        n = self._n
        a, b = self._data.slot_a, self._data.slot_b
        p = _sigmoid(self._eta(x))
        weight = p * (1.0 - p)
        result = np.zeros((n + 1, n + 1), dtype=np.float64)
        # Each comparison adds w g g' with g = e_a - e_b + e_gamma.
        gamma_index = np.full_like(a, n)
        for row, row_sign in ((a, 1.0), (b, -1.0), (gamma_index, 1.0)):
            for column, column_sign in ((a, 1.0), (b, -1.0), (gamma_index, 1.0)):
                np.add.at(result, (row, column), row_sign * column_sign * weight)
        s = _sigmoid(x)
        result[np.diag_indices(n + 1)] += 2.0 * self._alpha * s * (1.0 - s)
        return result

    def _eta(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Linear predictor ``theta_a - theta_b + gamma`` per comparison."""
        eta: NDArray[np.float64] = x[self._data.slot_a] - x[self._data.slot_b] + x[self._n]
        return eta


def _order_effect_standard_error(information: NDArray[np.float64]) -> float:
    """``sqrt((H^-1)_gg)``, the last diagonal entry of the inverse information."""
    size = information.shape[0]
    factor = scipy.linalg.cho_factor(information, lower=True, check_finite=False)
    unit = np.zeros(size, dtype=np.float64)
    unit[-1] = 1.0
    variance = float(scipy.linalg.cho_solve(factor, unit, check_finite=False)[-1])
    # H is positive definite, so the variance is > 0; guard rounding only.
    return math.sqrt(max(variance, np.finfo(np.float64).tiny))


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow warnings."""
    result: NDArray[np.float64] = scipy.special.expit(x)
    return result
