"""When to stop asking for comparisons: score stability, reliability, budget, pairs.

The reconciler calls :func:`decide_stop` after each fit. ``stop`` means "submit no more
comparisons"; the caller scores the batch once the comparisons still in flight have settled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cj_operator.lifecycle.reasons import Reason

__all__ = [
    "StopDecision",
    "decide_stop",
    "max_score_change",
]


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop submitting comparisons, and why.

    Attributes:
        stop: True when no more comparisons should be submitted.
        reason: why it stops (a :class:`Reason`); None when not stopping.
        message: one sentence for a person, with the numbers that decided it (also when not
            stopping: what the batch is waiting for).
    """

    stop: bool
    reason: Reason | None
    message: str


def max_score_change(previous: Sequence[float] | None, current: Sequence[float]) -> float | None:
    """Largest absolute change of any essay's score between two fits (logits).

    Both fits must be centred the same way (:func:`fit_bradley_terry` centres to mean 0), so
    a change is a change of position on the scale, not of the arbitrary origin.

    Returns:
        ``max_i |current_i - previous_i|``; None when there is no previous fit or no essays.

    Raises:
        ValueError: the two fits have different lengths, or a score is not finite.
    """
    if previous is None:
        return None
    if len(previous) != len(current):
        raise ValueError(
            f"previous and current scores differ in length ({len(previous)} and {len(current)})"
        )
    if not all(math.isfinite(x) for x in (*previous, *current)):
        raise ValueError("scores must all be finite numbers")
    if not current:
        return None
    return max(abs(c - p) for p, c in zip(previous, current, strict=True))


def decide_stop(
    *,
    n_items: int,
    results: int,
    submitted: int,
    max_total: int,
    max_change: float | None,
    stability_threshold: float,
    min_results_for_stability: int,
    reliability: float | None,
    reliability_target: float | None,
    pairs_available: int,
) -> StopDecision:
    """Decide whether a batch should stop submitting comparisons.

    Rules, in order of precedence (the first that holds gives the reason; rules that judge
    the quality of the scores come before rules that only say no more can be asked, so a
    batch that became stable in its last affordable round reports ScoresStable):

    1. ``InsufficientEssays``: fewer than 2 essays, nothing to compare.
    2. ``ReliabilityReached``: a ``reliability_target`` is set and the scale separation
       reliability has reached it (``reliability >= reliability_target``).
    3. ``ScoresStable``: at least ``min_results_for_stability`` results are in and the
       largest score change since the previous fit is below ``stability_threshold``
       (``max_change < stability_threshold``, logits). The defaults of the CJBatch spec,
       0.025 after 12 results, come from the platform this project serves.
    4. ``BudgetExhausted``: ``submitted >= max_total``.
    5. ``AllPairsCompared``: ``pairs_available <= 0``, the pairing policy has nothing left to
       ask (e.g. :func:`cj_operator.pairing.history.unused_pair_count` when pairs must not
       repeat).

    Args:
        n_items: essays in the batch, >= 0.
        results: successful comparison results recorded, 0 <= results <= submitted.
        submitted: comparisons submitted so far (every attempt that counts against the
            budget), >= 0.
        max_total: comparison budget, >= 0.
        max_change: :func:`max_score_change` of the last two fits, None if fewer than two.
        stability_threshold: > 0, logits.
        min_results_for_stability: >= 0.
        reliability: scale separation reliability of the last fit, None if undefined.
        reliability_target: in (0, 1), or None for no reliability rule.
        pairs_available: comparisons the pairing policy could still make; <= 0 means none.

    Raises:
        ValueError: a count is negative, ``results > submitted``, a threshold or target out
            of range, or a value is not finite (the message names it).
    """
    _require_count("n_items", n_items)
    _require_count("results", results)
    _require_count("submitted", submitted)
    _require_count("max_total", max_total)
    _require_count("min_results_for_stability", min_results_for_stability)
    _require_count("pairs_available", pairs_available, allow_negative=True)
    if results > submitted:
        raise ValueError(f"results ({results}) cannot exceed submitted ({submitted})")
    if not (math.isfinite(stability_threshold) and stability_threshold > 0):
        raise ValueError(f"stability_threshold must be > 0, got {stability_threshold!r}")
    if max_change is not None and not (math.isfinite(max_change) and max_change >= 0):
        raise ValueError(f"max_change must be a finite number >= 0, got {max_change!r}")
    if reliability is not None and not (math.isfinite(reliability) and reliability <= 1):
        raise ValueError(f"reliability must be a finite number <= 1, got {reliability!r}")
    if reliability_target is not None and not (0 < reliability_target < 1):
        raise ValueError(f"reliability_target must be in (0, 1), got {reliability_target!r}")

    if n_items < 2:
        return StopDecision(
            True,
            Reason.INSUFFICIENT_ESSAYS,
            f"The batch has {n_items} essay{'s' if n_items != 1 else ''}; "
            "at least 2 are needed to compare.",
        )
    if (
        reliability_target is not None
        and reliability is not None
        and reliability >= reliability_target
    ):
        return StopDecision(
            True,
            Reason.RELIABILITY_REACHED,
            f"Scale separation reliability {reliability:.3f} reached the target "
            f"{reliability_target:.3f} after {results} results.",
        )
    stable_enough = results >= min_results_for_stability
    if max_change is not None and stable_enough and max_change < stability_threshold:
        return StopDecision(
            True,
            Reason.SCORES_STABLE,
            f"The largest score change between the last two fits, {max_change:.4f}, is below "
            f"the stability threshold {stability_threshold:g} after {results} results.",
        )
    if submitted >= max_total:
        return StopDecision(
            True,
            Reason.BUDGET_EXHAUSTED,
            f"{submitted} comparisons submitted of a budget of {max_total}.",
        )
    if pairs_available <= 0:
        return StopDecision(
            True,
            Reason.ALL_PAIRS_COMPARED,
            f"Every pair the pairing policy allows among {n_items} essays has been compared.",
        )
    return StopDecision(
        False,
        None,
        _continue_message(
            results,
            submitted,
            max_total,
            max_change,
            stability_threshold,
            min_results_for_stability,
        ),
    )


def _continue_message(
    results: int,
    submitted: int,
    max_total: int,
    max_change: float | None,
    stability_threshold: float,
    min_results_for_stability: int,
) -> str:
    budget = f"{submitted} of {max_total} comparisons submitted, {results} results in"
    if results < min_results_for_stability:
        return (
            f"Continuing: {budget}; stability is judged from {min_results_for_stability} "
            "results on."
        )
    if max_change is None:
        return f"Continuing: {budget}; no previous fit to judge score stability yet."
    return (
        f"Continuing: {budget}; the largest score change {max_change:.4f} is not below "
        f"{stability_threshold:g}."
    )


def _require_count(name: str, value: int, *, allow_negative: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 0 and not allow_negative:
        raise ValueError(f"{name} must be >= 0, got {value}")
