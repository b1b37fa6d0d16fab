"""Infit and outfit mean squares: which essays and which judges the Bradley-Terry model fits.

Residuals. For one comparison with linear predictor ``eta = theta_a - theta_b + gamma``
(``gamma`` an optional order effect for slot A, see :mod:`cj_operator.scoring.order_effect`)
the model expects the essay in slot A to win with probability ``p = sigmoid(eta)``. With
``x`` = 1 when it won and 0 when it lost, the squared standardised residual is
``z^2 = (x - p)^2 / (p (1 - p))`` (``= exp(-eta)`` when A won, ``exp(eta)`` when it lost)
and its information (variance) is ``w = p (1 - p)``. Both are the same from slot B's side,
so a comparison counts once for each of its two essays and once for its judge.

Statistics (Wright & Masters, 1982, Rating Scale Analysis, MESA Press, chapter 5), over the
comparisons a unit (an essay, or a judge) took part in:

- outfit mean square ``= mean(z^2)``: unweighted, so dominated by surprising outcomes of
  unequal pairs (a weak essay beating a strong one);
- infit mean square ``= sum((x - p)^2) / sum(w)``: information-weighted, so dominated by
  the close pairs that carry most information.

Under the model both have expectation 1 (``E[(x - p)^2] = p (1 - p)``); values well above 1
mean more noise than the model allows (a judge answering at random, an essay judged
inconsistently), values below 1 more predictability. Comparative judgement uses them to
report "misfitting scripts" and "misfitting judges" (Pollitt, 2012, "The method of Adaptive
Comparative Judgement", Assessment in Education 19(3), 281-300). With fitted rather than
true scores they come out below 1: the fit absorbs some noise (about ``n`` scores' worth out
of the comparisons) and the prior shrinks the scores, which makes upsets look less
surprising. Measured in ``tests/unit/operator/test_misfit.py`` (60 essays, ~20 comparisons
each): the mean over essays is about 1.01 (infit) and 1.02 (outfit) with the true abilities,
0.87-0.93 and 0.78-0.90 with the fitted scores.

What they can see. An answer misfits only where the model predicts it: for two close essays
the model expects a coin flip too. In the seeded simulations of the tests (abilities
N(0, 2), non-adaptive pairing), a judge that answers a fifth of the comparisons at random
has infit 1.34-1.62 and outfit 1.47-2.42 while the judge that follows the model has about
0.7; when the random judge answers half, the fit compresses the scale to match it and its
infit is only 1.08-1.19. With adaptive pairing (close scores meet) it is lower again: infit
1.04-1.23 in three seeded runs with a fifth at random. Compare judges with each other, not
only with a fixed threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special
from numpy.typing import NDArray

from cj_operator.scoring.indices import essay_pair

__all__ = [
    "OUTFIT_THRESHOLD",
    "MeanSquares",
    "MisfitReport",
    "misfit_statistics",
    "misfitting_essays",
]

_SLOTS = ("slot A", "slot B")

OUTFIT_THRESHOLD = 1.5
"""Outfit mean square above which an essay is flagged as misfitting.

Linacre's guide for mean squares (2002, "What do infit and outfit, mean-square and
standardized mean?", Rasch Measurement Transactions 16(2), 878): 0.5-1.5 is productive for
measurement, above 1.5 unproductive, above 2.0 degrading. With about 20 comparisons per
essay and fitted scores, 2.7% of essays that follow the model exceed it by chance in the
seeded simulations of ``tests/unit/operator/test_misfit.py``."""


@dataclass(frozen=True)
class MeanSquares:
    """Residual fit of one essay or one judge.

    Attributes:
        comparisons: how many comparisons the statistics are over, >= 1.
        infit: information-weighted mean square, >= 0; about 1 under the model.
        outfit: unweighted mean square of the standardised residuals, > 0; about 1 under
            the model.
    """

    comparisons: int
    infit: float
    outfit: float


@dataclass(frozen=True)
class MisfitReport:
    """Result of :func:`misfit_statistics`.

    Attributes:
        essays: per essay in index order, its :class:`MeanSquares` over the comparisons it
            took part in (either slot), or None when it took part in none.
        judges: per judge key that occurs in the comparisons (sorted by key), its
            :class:`MeanSquares` over the comparisons it answered.
    """

    essays: tuple[MeanSquares | None, ...]
    judges: Mapping[str, MeanSquares]


def misfit_statistics(
    scores: Sequence[float],
    comparisons: Sequence[tuple[int, int, bool, str]],
    order_effect: float = 0.0,
) -> MisfitReport:
    """Infit and outfit mean squares per essay and per judge (module docstring: formulas).

    Args:
        scores: fitted log-strength per essay (logits), e.g. from
            :func:`~cj_operator.scoring.bradley_terry.fit_bradley_terry` (or the scores of
            :func:`~cj_operator.scoring.order_effect.fit_order_effect` together with its
            order effect); at least 2, all finite. Only differences matter.
        comparisons: one ``(slot_a_index, slot_b_index, a_won, judge_key)`` per successful
            comparison; ``a_won`` is True when the essay in slot A won, ``judge_key`` any
            string that groups comparisons by judge (e.g. ``"provider/model"``). May be empty.
        order_effect: ``gamma`` (logits) added to every linear predictor, favouring slot A
            when > 0; 0 for the plain Bradley-Terry model.

    Returns:
        A :class:`MisfitReport` with ``len(scores)`` entries per essay and one per judge key.
        An outfit is ``inf`` only if an upset spans more than about 709 logits (``exp``
        overflows), far beyond any fitted scale.

    Raises:
        ValueError: fewer than 2 scores, a score or ``order_effect`` that is not finite, or a
            comparison that is not ``(index, other index, bool, str)`` with two different
            indices in ``range(len(scores))`` (the message names its position).

    Cost: O(len(scores) + len(comparisons)).
    """
    theta = np.asarray(scores, dtype=np.float64)
    if theta.ndim != 1 or len(theta) < 2:
        raise ValueError(f"scores must be a sequence of at least 2 numbers, got {len(theta)}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("scores must all be finite numbers")
    if (
        isinstance(order_effect, bool)
        or not isinstance(order_effect, int | float)
        or not math.isfinite(order_effect)
    ):
        raise ValueError(f"order_effect must be a finite number, got {order_effect!r}")
    n_items = len(theta)
    slot_a, slot_b, a_won, judge_index, judge_keys = _comparison_arrays(n_items, comparisons)

    eta = theta[slot_a] - theta[slot_b] + float(order_effect)
    sign = np.where(a_won, 1.0, -1.0)
    # (x - p)^2 / (p (1 - p)) = (1 - p) / p = exp(-eta) if A won, p / (1 - p) = exp(eta) if not.
    with np.errstate(over="ignore"):
        squared_z = np.exp(-sign * eta)
    # (x - p)^2 = sigmoid(-eta)^2 if A won, sigmoid(eta)^2 if not, both as sigmoid(-sign eta).
    squared_residual = _sigmoid(-sign * eta) ** 2
    information = _sigmoid(eta) * _sigmoid(-eta)

    # Each comparison counts once for each of its two essays and once for its judge.
    essays = _mean_squares(
        np.concatenate([slot_a, slot_b]),
        n_items,
        np.tile(squared_z, 2),
        np.tile(squared_residual, 2),
        np.tile(information, 2),
    )
    judge_statistics = _mean_squares(
        judge_index, len(judge_keys), squared_z, squared_residual, information
    )
    judges = {
        key: statistics
        for key, statistics in zip(judge_keys, judge_statistics, strict=True)
        if statistics is not None
    }
    return MisfitReport(essays=tuple(essays), judges=dict(sorted(judges.items())))


def misfitting_essays(report: MisfitReport, threshold: float = OUTFIT_THRESHOLD) -> tuple[int, ...]:
    """Indices of the essays whose outfit mean square is above ``threshold``.

    Args:
        report: the result of :func:`misfit_statistics`.
        threshold: outfit mean square (default :data:`OUTFIT_THRESHOLD`), a finite number.

    Returns:
        The indices in ascending order; essays with no comparisons are never flagged.

    Raises:
        ValueError: ``threshold`` is not a finite number.
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return tuple(
        index
        for index, statistics in enumerate(report.essays)
        if statistics is not None and statistics.outfit > threshold
    )


def _mean_squares(
    unit: NDArray[np.intp],
    n_units: int,
    squared_z: NDArray[np.float64],
    squared_residual: NDArray[np.float64],
    information: NDArray[np.float64],
) -> list[MeanSquares | None]:
    """Per unit ``0 .. n_units - 1``: outfit ``mean(z^2)`` and infit
    ``sum((x - p)^2) / sum(p (1 - p))`` over the entries with that unit, None for none."""
    count = np.bincount(unit, minlength=n_units)
    z_sum = np.bincount(unit, weights=squared_z, minlength=n_units)
    residual_sum = np.bincount(unit, weights=squared_residual, minlength=n_units)
    information_sum = np.bincount(unit, weights=information, minlength=n_units)
    return [
        MeanSquares(
            comparisons=int(count[k]),
            infit=float(residual_sum[k] / information_sum[k]),
            outfit=float(z_sum[k] / count[k]),
        )
        if count[k] > 0
        else None
        for k in range(n_units)
    ]


def _comparison_arrays(
    n_items: int, comparisons: Sequence[tuple[int, int, bool, str]]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_], NDArray[np.intp], list[str]]:
    """Slot A, slot B, A won, judge number per comparison and the judge keys in order of
    first appearance; raises ValueError naming the first bad comparison."""
    slot_a = np.empty(len(comparisons), dtype=np.intp)
    slot_b = np.empty(len(comparisons), dtype=np.intp)
    a_won = np.empty(len(comparisons), dtype=np.bool_)
    judge_index = np.empty(len(comparisons), dtype=np.intp)
    judge_numbers: dict[str, int] = {}
    for position, comparison in enumerate(comparisons):
        try:
            a, b, won, judge = comparison
        except (TypeError, ValueError):
            raise ValueError(
                f"comparisons[{position}] must be a (slot_a_index, slot_b_index, a_won, "
                f"judge_key) tuple, got {comparison!r}"
            ) from None
        a, b = essay_pair(n_items, f"comparisons[{position}]", _SLOTS, comparison, a, b)
        if not isinstance(won, bool | np.bool_):
            raise ValueError(
                f"comparisons[{position}] has a_won {won!r}, not a bool (True when the essay "
                f"in slot A won)"
            )
        if not isinstance(judge, str):
            raise ValueError(f"comparisons[{position}] has judge_key {judge!r}, not a string")
        slot_a[position] = a
        slot_b[position] = b
        a_won[position] = bool(won)
        judge_index[position] = judge_numbers.setdefault(judge, len(judge_numbers))
    return slot_a, slot_b, a_won, judge_index, list(judge_numbers)


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow warnings."""
    result: NDArray[np.float64] = scipy.special.expit(x)
    return result
