"""What a teacher needs to judge a ranking beside the scores: the order effect and misfit (pure).

After each Bradley-Terry fit the operator also fits the model with an order effect for slot A
(:mod:`cj_operator.scoring.order_effect`) and computes infit and outfit mean squares per essay
and per judge (:mod:`cj_operator.scoring.misfit`) from that model's scores and order effect, so
a judge's position bias does not show up as misfit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    """Infit and outfit mean squares of one judge (`provider/model`) over its comparisons."""

    judge: str
    comparisons: int
    infit: float
    outfit: float


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
        JudgeFit(key, fit.comparisons, fit.infit, fit.outfit)
        for key, fit in sorted(report.judges.items())
    )
    return Diagnostics(order, report.essays, judges, misfitting_essays(report))
