"""What a teacher needs to judge a ranking beside the scores: the order effect and misfit (pure).

After each Bradley-Terry fit the operator also fits the model with an order effect for slot A
(:mod:`cj_operator.scoring.order_effect`) and computes infit and outfit mean squares per essay
and per judge (:mod:`cj_operator.scoring.misfit`) from that model's scores and order effect, so
a judge's position bias does not show up as misfit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit

from cj_operator.scoring.misfit import (
    OUTFIT_THRESHOLD,
    MeanSquares,
    misfit_statistics,
    misfitting_essays,
)
from cj_operator.scoring.order_effect import OrderEffectFit, fit_order_effect

__all__ = ["Diagnostics", "JudgeFit", "diagnose"]


@dataclass(frozen=True)
class JudgeFit:
    """One judge (`provider/model`) over its comparisons, against the batch's one scale.

    Attributes:
        judge: `provider/model`.
        comparisons: its comparisons with a winner.
        infit, outfit: mean squares of its verdicts (:mod:`cj_operator.scoring.misfit`).
        agreement: share of its verdicts won by the essay the scale puts higher (ties in score
            count one half), in [0, 1]: its agreement with the panel (all judges together).
        order_effect: its own slot-A effect (logits) with the scale's scores held fixed;
            `order_effect_se` its standard error (logits).
    """

    judge: str
    comparisons: int
    infit: float
    outfit: float
    agreement: float = math.nan
    order_effect: float = math.nan
    order_effect_se: float = math.nan


@dataclass(frozen=True)
class Diagnostics:
    """The order effect, per-essay misfit (None for an essay without a comparison), per-judge
    misfit (by judge key), and the indices of essays whose outfit is above the threshold."""

    order: OrderEffectFit
    essays: tuple[MeanSquares | None, ...]
    judges: tuple[JudgeFit, ...]
    misfitting: tuple[int, ...]
    outfit_threshold: float = OUTFIT_THRESHOLD


def diagnose(n_items: int, judged: Sequence[tuple[int, int, bool, str]]) -> Diagnostics | None:
    """Order effect and misfit of a batch's comparisons with a winner.

    Args:
        n_items: essays in the batch, >= 2.
        judged: one ``(slot_a_index, slot_b_index, a_won, judge_key)`` per comparison with a
            winner.

    Returns:
        The :class:`Diagnostics`, or None when there is no comparison yet.

    Raises:
        ValueError: as :func:`fit_order_effect` and :func:`misfit_statistics` do for bad input.
    """
    if not judged or n_items < 2:
        return None
    order = fit_order_effect(n_items, [(a, b, won) for a, b, won, _ in judged])
    report = misfit_statistics(order.scores, judged, order.order_effect)
    judges = tuple(
        JudgeFit(
            key,
            fit.comparisons,
            fit.infit,
            fit.outfit,
            *_agreement_and_order(
                order.scores, [(a, b, won) for a, b, won, k in judged if k == key]
            ),
        )
        for key, fit in sorted(report.judges.items())
    )
    return Diagnostics(order, report.essays, judges, misfitting_essays(report))


def _agreement_and_order(
    scores: Sequence[float], judged: Sequence[tuple[int, int, bool]]
) -> tuple[float, float, float]:
    """(agreement, order effect, its SE) of one judge's verdicts against fixed scores.

    The order effect is the maximum-likelihood gamma of P(A wins) = sigmoid(s_a - s_b + gamma)
    (Agresti 2002, the Bradley-Terry model with a home advantage, here with the abilities held
    at the scale's values); its SE is 1 / sqrt(sum p (1 - p)) at the estimate.
    """
    s = np.asarray(scores, dtype=float)
    a = np.array([x for x, _, _ in judged])
    b = np.array([y for _, y, _ in judged])
    won = np.array([w for _, _, w in judged], dtype=float)
    diff = s[a] - s[b]
    higher_won = np.where(diff == 0, 0.5, np.where(diff > 0, won, 1.0 - won))
    agreement = float(higher_won.mean())

    def negative_log_likelihood(gamma: float) -> float:
        z = diff + gamma
        return -float(np.sum(won * log_expit(z) + (1 - won) * log_expit(-z)))

    gamma = float(minimize_scalar(negative_log_likelihood, bounds=(-10, 10), method="bounded").x)
    p = expit(diff + gamma)
    information = float(np.sum(p * (1 - p)))
    se = 1 / math.sqrt(information) if information > 0 else math.inf
    return agreement, gamma, se
