"""When to stop asking for comparisons: score stability, reliability, budget, pairs.

The reconciler calls :func:`decide_stop` after each fit. ``stop`` means "submit no more
comparisons"; the caller scores the batch once the comparisons still in flight have settled.

Score stability is measured in standard errors (:func:`score_change_se`): the root mean square
over essays of each score's change between two fits divided by its standard error. A round adds
about one comparison per essay, which moves a score by a fraction of its SE that shrinks like
1 / sqrt(comparisons per essay) whatever the spread of the essays, so the rule says "one more
round moves the scores by less than this share of their uncertainty" and is reached after a
predictable number of comparisons. The default 0.15 was chosen by simulation
(`bench/stability_rule.py`, table in docs/scoring.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cj_operator.lifecycle.reasons import Reason

__all__ = [
    "DEFAULT_STABILITY_THRESHOLD_SE",
    "StopDecision",
    "decide_stop",
    "max_score_change",
    "score_change_se",
]

DEFAULT_STABILITY_THRESHOLD_SE = 0.15
"""Default `spec.stopping.scoreStabilitySE`: the largest threshold whose mean loss of true
reliability, against continuing to 30 comparisons per essay, stayed at or below 0.025 in every
simulated cell (40 and 100 essays, ability SD 0.75-3 logits; bench/stability_rule.py: largest
loss 0.022, stops after about 22-30 comparisons per essay when SD >= 1.5)."""


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


def score_change_se(
    previous: Sequence[float] | None,
    current: Sequence[float],
    standard_errors: Sequence[float],
) -> float | None:
    """Root mean square score change between two fits, in units of each score's SE.

    ``sqrt(mean_i(((current_i - previous_i) / se_i) ** 2))`` with ``se_i`` the current fit's
    standard error of essay i (logits). Both fits must be centred the same way.

    Returns:
        The change (>= 0, in standard errors); None when there is no previous fit or no
        essays.

    Raises:
        ValueError: the sequences differ in length, a score is not finite, or a standard
            error is not a finite number > 0.
    """
    if previous is None:
        return None
    if not (len(previous) == len(current) == len(standard_errors)):
        raise ValueError(
            f"previous scores, current scores and standard errors differ in length "
            f"({len(previous)}, {len(current)} and {len(standard_errors)})"
        )
    if not all(math.isfinite(x) for x in (*previous, *current)):
        raise ValueError("scores must all be finite numbers")
    if not all(math.isfinite(se) and se > 0 for se in standard_errors):
        raise ValueError("standard errors must all be finite numbers > 0")
    if not current:
        return None
    squares = [
        ((c - p) / se) ** 2 for p, c, se in zip(previous, current, standard_errors, strict=True)
    ]
    return math.sqrt(sum(squares) / len(squares))


def decide_stop(
    *,
    n_items: int,
    results: int,
    submitted: int,
    max_total: int,
    change_se: float | None,
    stability_threshold_se: float,
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
    2. ``ReliabilityReached``: a ``reliability_target`` is set and the empirical-Bayes
       reliability (`cj_operator.scoring.reliability`) has reached it
       (``reliability >= reliability_target``).
    3. ``ScoresStable``: at least ``min_results_for_stability`` results are in and the
       score change since the previous fit, in standard errors (:func:`score_change_se`),
       is below ``stability_threshold_se`` (``change_se < stability_threshold_se``). The
       CJBatch default is :data:`DEFAULT_STABILITY_THRESHOLD_SE` after 12 results.
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
        change_se: :func:`score_change_se` of the last two fits, None if fewer than two (or
            when no new comparison with a winner came in between them).
        stability_threshold_se: > 0, standard errors.
        min_results_for_stability: >= 0.
        reliability: empirical-Bayes reliability of the last fit, None if undefined.
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
    if not (math.isfinite(stability_threshold_se) and stability_threshold_se > 0):
        raise ValueError(f"stability_threshold_se must be > 0, got {stability_threshold_se!r}")
    if change_se is not None and not (math.isfinite(change_se) and change_se >= 0):
        raise ValueError(f"change_se must be a finite number >= 0, got {change_se!r}")
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
            f"Reliability {reliability:.3f} reached the target "
            f"{reliability_target:.3f} after {results} results.",
        )
    stable_enough = results >= min_results_for_stability
    if change_se is not None and stable_enough and change_se < stability_threshold_se:
        return StopDecision(
            True,
            Reason.SCORES_STABLE,
            f"The scores moved by {change_se:.3f} standard errors (root mean square) between "
            f"the last two fits, below scoreStabilitySE {stability_threshold_se:g}, after "
            f"{results} results.",
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
            change_se,
            stability_threshold_se,
            min_results_for_stability,
        ),
    )


def _continue_message(
    results: int,
    submitted: int,
    max_total: int,
    change_se: float | None,
    stability_threshold_se: float,
    min_results_for_stability: int,
) -> str:
    budget = f"{submitted} of {max_total} comparisons submitted, {results} results in"
    if results < min_results_for_stability:
        return (
            f"Continuing: {budget}; stability is judged from {min_results_for_stability} "
            "results on."
        )
    if change_se is None:
        return f"Continuing: {budget}; no previous fit to judge score stability yet."
    return (
        f"Continuing: {budget}; the scores moved by {change_se:.3f} standard errors, not "
        f"below scoreStabilitySE {stability_threshold_se:g}."
    )


def _require_count(name: str, value: int, *, allow_negative: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 0 and not allow_negative:
        raise ValueError(f"{name} must be >= 0, got {value}")
