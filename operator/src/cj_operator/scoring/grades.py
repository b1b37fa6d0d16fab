"""Projected grades from anchor essays: ordinal regression of known grades on the scale (pure).

Anchor essays carry a known grade (`metadata.anchorGrade`) and are compared like any other.
After the fit, the anchors' grades are regressed on their Bradley-Terry scores with a
cumulative-logit (proportional-odds) model (McCullagh 1980, "Regression models for ordinal
data", JRSS B 42):

    P(grade <= g_k | theta) = sigmoid(c_k - beta * theta),   k = 1 .. K-1,

over the K distinct anchor grades g_1 < ... < g_K, with increasing thresholds c_k. A score is
known only up to its standard error, so the model is written for the estimate s with
theta ~ N(s, se^2), using the logistic-normal approximation
E[sigmoid(a + b X)] ~= sigmoid((a + b mu) / sqrt(1 + pi b^2 sigma^2 / 8)) (e.g. Bishop 2006,
"Pattern Recognition and Machine Learning", 4.5.2). This keeps the likelihood bounded when
the anchors are perfectly ordered (the usual case with few anchors), where a plain
proportional-odds fit would send beta to infinity. Weak normal priors (beta ~ N(0, 5^2),
c_k ~ N(0, 10^2)) make the maximum a posteriori fit unique; parameter uncertainty is its
Laplace approximation (normal with the inverse Hessian as covariance).

Every essay (anchors included) gets the predictive distribution of its grade, averaged over
`draws` parameter draws and its own score uncertainty: the projected grade is its median, the
interval its 2.5% and 97.5% quantiles (a 95% predictive interval over the anchor grades), the
expected grade its mean. Calibration is tested by simulation (tests/unit/operator/
test_grades.py: coverage of the 95% intervals on essays that are not anchors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import differentiate
from scipy.optimize import minimize
from scipy.special import expit, log_expit

__all__ = [
    "ANCHOR_GRADE_KEY",
    "MIN_ANCHORS",
    "GradeProjection",
    "ProjectedGrade",
    "project_grades",
]

ANCHOR_GRADE_KEY = "anchorGrade"
"""The essay metadata key that makes an essay an anchor: its known grade, a number."""
MIN_ANCHORS = 3
"""Fewest anchors (with at least two distinct grades) for a projection."""
_BETA_PRIOR_SD = 5.0
_THRESHOLD_PRIOR_SD = 10.0
_LOGISTIC_NORMAL = math.pi / 8.0


@dataclass(frozen=True)
class ProjectedGrade:
    """One essay's projected grade (in the anchors' grade units).

    Attributes:
        grade: median of the predictive distribution (one of the anchor grades).
        low: its 2.5% quantile; `high`: its 97.5% quantile (a 95% predictive interval).
        expected: mean of the predictive distribution.
    """

    grade: float
    low: float
    high: float
    expected: float


@dataclass(frozen=True)
class GradeProjection:
    """The fitted grade model and every essay's projection, in the essays' index order.

    Attributes:
        grades: the distinct anchor grades, ascending (the model's categories).
        anchors: how many essays were anchors.
        slope: beta, logits of the cumulative odds per logit of score (MAP).
        thresholds: c_1 .. c_{K-1} (MAP).
        essays: one ProjectedGrade per essay (None for an essay without a score).
    """

    grades: tuple[float, ...]
    anchors: int
    slope: float
    thresholds: tuple[float, ...]
    essays: tuple[ProjectedGrade | None, ...]

    def distribution(self) -> dict[float, int]:
        """How many essays have each projected grade (every anchor grade listed)."""
        counts = dict.fromkeys(self.grades, 0)
        for p in self.essays:
            if p is not None:
                counts[p.grade] += 1
        return counts

    def summary(self) -> dict[str, object]:
        """The model and the distribution as JSON-ready data (stored with the batch)."""
        return {
            "anchors": self.anchors,
            "grades": list(self.grades),
            "slope": self.slope,
            "thresholds": list(self.thresholds),
            "distribution": [
                {"grade": grade, "essays": count} for grade, count in self.distribution().items()
            ],
        }


def project_grades(
    scores: Sequence[float | None],
    standard_errors: Sequence[float | None],
    anchors: Mapping[int, float],
    *,
    draws: int = 2000,
    seed: int = 0,
) -> GradeProjection | None:
    """Fit the grade model to the anchors and project every essay's grade (module docstring).

    Args:
        scores: Bradley-Terry score per essay (logits); None for an essay without one.
        standard_errors: per essay, > 0 where the score is given.
        anchors: essay index -> known grade (a finite number); anchors without a score are
            left out of the fit.
        draws: parameter draws from the Laplace approximation, >= 100.
        seed: the draws' seed (the same inputs and seed give the same projection).

    Returns:
        The projection; None when fewer than MIN_ANCHORS scored anchors or fewer than two
        distinct grades among them (nothing to regress).

    Raises:
        ValueError: lengths differ, an anchor index is out of range, a grade or score is not
            finite, a standard error is not > 0, or `draws` < 100.
    """
    n = len(scores)
    if len(standard_errors) != n:
        raise ValueError(
            f"scores and standard_errors differ in length ({n}, {len(standard_errors)})"
        )
    if draws < 100:
        raise ValueError(f"draws must be >= 100, got {draws}")
    for i, (value, error) in enumerate(zip(scores, standard_errors, strict=True)):
        if value is None:
            continue
        if not math.isfinite(value):
            raise ValueError(f"scores[{i}] is not finite: {value!r}")
        if error is None or not (math.isfinite(error) and error > 0):
            raise ValueError(f"standard_errors[{i}] must be a finite number > 0, got {error!r}")
    for anchor, grade in anchors.items():
        if not 0 <= anchor < n:
            raise ValueError(f"anchor index {anchor} is out of range for {n} essays")
        if not math.isfinite(grade):
            raise ValueError(f"the grade of anchor {anchor} is not finite: {grade!r}")
    scored = {i: g for i, g in anchors.items() if scores[i] is not None}
    grades = tuple(sorted(set(scored.values())))
    if len(scored) < MIN_ANCHORS or len(grades) < 2:
        return None

    order = sorted(scored)
    s = np.array([scores[i] for i in order], dtype=np.float64)
    se = np.array([standard_errors[i] for i in order], dtype=np.float64)
    y = np.array([grades.index(scored[i]) for i in order], dtype=np.int64)
    mode, covariance = _fit(s, se, y, len(grades))

    rng = np.random.default_rng(seed)
    params = rng.multivariate_normal(mode, covariance, size=draws, method="eigh")
    essays: list[ProjectedGrade | None] = []
    values = np.array(grades)
    for score, error in zip(scores, standard_errors, strict=True):
        if score is None or error is None:
            essays.append(None)
            continue
        probs = _category_probs(params, np.array([score]), np.array([error]), len(grades))
        p = probs.mean(axis=0)[0]
        cdf = np.cumsum(p)
        essays.append(
            ProjectedGrade(
                grade=float(values[_quantile_index(cdf, 0.5)]),
                low=float(values[_quantile_index(cdf, 0.025)]),
                high=float(values[_quantile_index(cdf, 0.975)]),
                expected=float(p @ values),
            )
        )
    slope, thresholds = _unpack(mode)
    return GradeProjection(
        grades=grades,
        anchors=len(scored),
        slope=float(slope[0]),
        thresholds=tuple(float(c) for c in thresholds[0]),
        essays=tuple(essays),
    )


def _quantile_index(cdf: NDArray[np.float64], q: float) -> int:
    return min(int(np.searchsorted(cdf, q - 1e-12)), len(cdf) - 1)


def _unpack(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Parameter rows [beta, c_1, log(c_2 - c_1), ...] -> (beta per row, thresholds per row)."""
    theta = np.atleast_2d(theta)
    steps = np.concatenate([theta[:, 1:2], np.exp(theta[:, 2:])], axis=1)
    return theta[:, 0], np.cumsum(steps, axis=1)


def _category_probs(
    theta: NDArray[np.float64], s: NDArray[np.float64], se: NDArray[np.float64], k: int
) -> NDArray[np.float64]:
    """P(category) per parameter row and essay: shape (rows, essays, k)."""
    beta, c = _unpack(theta)
    scale = np.sqrt(1.0 + _LOGISTIC_NORMAL * np.outer(beta**2, se**2))  # rows x essays
    z = (c[:, None, :] - (beta[:, None] * s[None, :])[:, :, None]) / scale[:, :, None]
    cumulative = expit(z)  # rows x essays x (k-1)
    ones = np.ones((*cumulative.shape[:2], 1))
    upper = np.concatenate([cumulative, ones], axis=2)
    lower = np.concatenate([np.zeros_like(ones), cumulative], axis=2)
    return np.asarray(np.clip(upper - lower, 0.0, 1.0), dtype=np.float64)


def _neg_log_posterior(
    theta: NDArray[np.float64],
    s: NDArray[np.float64],
    se: NDArray[np.float64],
    y: NDArray[np.int64],
    k: int,
) -> float:
    beta, c = _unpack(theta)
    scale = np.sqrt(1.0 + _LOGISTIC_NORMAL * beta[0] ** 2 * se**2)
    z = (c[0][None, :] - beta[0] * s[:, None]) / scale[:, None]  # essays x (k-1)
    # log P(y) = log(F(z_y) - F(z_{y-1})), written stably with log_expit
    log_like = 0.0
    for i, cat in enumerate(y):
        if cat == 0:
            log_like += float(log_expit(z[i, 0]))
        elif cat == k - 1:
            log_like += float(log_expit(-z[i, k - 2]))
        else:
            hi, lo = z[i, cat], z[i, cat - 1]
            log_like += float(log_expit(hi) + log_expit(-lo) + np.log1p(-np.exp(lo - hi)))
    prior = 0.5 * (beta[0] / _BETA_PRIOR_SD) ** 2 + 0.5 * float(
        np.sum((c[0] / _THRESHOLD_PRIOR_SD) ** 2)
    )
    return float(-log_like + prior)


def _fit(
    s: NDArray[np.float64], se: NDArray[np.float64], y: NDArray[np.int64], k: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """MAP parameters and their Laplace covariance."""
    start = np.concatenate([[1.0, -1.0], np.zeros(k - 2)])
    result = minimize(_neg_log_posterior, start, args=(s, se, y, k), method="BFGS")
    mode = np.asarray(result.x, dtype=float)
    hessian = _hessian(lambda t: _neg_log_posterior(t, s, se, y, k), mode)
    eigenvalues, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    eigenvalues = np.maximum(eigenvalues, 1e-6)
    covariance = (vectors / eigenvalues) @ vectors.T
    return mode, covariance


def _hessian(
    f: Callable[[NDArray[np.float64]], float], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Hessian of a scalar function at x (scipy.differentiate, which calls f vectorised)."""
    d = len(x)

    def vectorised(points: NDArray[np.float64]) -> NDArray[np.float64]:
        flat = points.reshape(d, -1)
        values = np.array([f(flat[:, j]) for j in range(flat.shape[1])])
        return values.reshape(points.shape[1:])

    return np.asarray(differentiate.hessian(vectorised, x).ddf, dtype=float)
