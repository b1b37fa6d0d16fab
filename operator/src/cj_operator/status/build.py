"""Build a CJBatch's status from a snapshot of its database state (pure).

Conditions: `Ready` is what `kubectl wait --for=condition=Ready` and GitOps health checks read
(True once the batch COMPLETED and its results ConfigMap holds the ranking, False otherwise,
its reason saying why), `Succeeded` is the summary (Unknown while running, True when
COMPLETED, False when FAILED or CANCELLED, its reason the batch's final reason),
`Progressing`, `Suspended`, `EssaysLoaded`, `OrderEffect` (True when the judge favours one slot
significantly), `ResultsWritten` and `ComparisonsWritten`.
`progress` is comparisons with a winner over the batch's budget (100% once COMPLETED), never
above 100%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cj_operator.lifecycle.reasons import Reason
from cj_operator.spec import all_pairs
from cj_operator.status.conditions import DesiredCondition, merge_conditions
from cj_operator.status.model import (
    CJBatchStatus,
    Condition,
    ConditionStatus,
    Grades,
    JudgeSummary,
    OrderEffect,
    Phase,
    TokenTotals,
    TopEssay,
)
from common_core import BatchStateEnum

_PHASES: dict[BatchStateEnum, Phase] = {
    BatchStateEnum.INITIALIZING: "Initializing",
    BatchStateEnum.GENERATING_PAIRS: "GeneratingPairs",
    BatchStateEnum.WAITING_CALLBACKS: "WaitingCallbacks",
    BatchStateEnum.SCORING: "Scoring",
    BatchStateEnum.COMPLETED: "Completed",
    BatchStateEnum.FAILED: "Failed",
    BatchStateEnum.CANCELLED: "Cancelled",
}


@dataclass(frozen=True)
class BatchSnapshot:
    """A batch as stored: what the status is built from."""

    uid: str
    name: str
    namespace: str
    state: BatchStateEnum
    suspended: bool
    generation: int
    essays: int
    essays_loaded: bool
    budget: int
    round: int
    submitted: int
    completed: int
    failed: int
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reliability: float | None
    ssr: float | None
    max_score_change: float | None
    score_change_se: float | None
    reason: str
    message: str
    started_at: datetime | None
    finished_at: datetime | None
    results_config_map: str | None
    top: Sequence[TopEssay] = field(default_factory=tuple)
    version: int = 0
    order_effect: OrderEffect | None = None
    grades: Grades | None = None
    judges: Sequence[JudgeSummary] = field(default_factory=tuple)
    misfitting_essays: int = 0
    results_blocked: str | None = None
    reserved_usd: float = 0.0
    late_results: int = 0
    late_cost_usd: float = 0.0
    comparisons_config_map: str | None = None
    comparisons_blocked: tuple[str, str] | None = None
    """(reason, message) when the comparisons ConfigMap was not written."""


def phase_of(snapshot: BatchSnapshot) -> Phase:
    """`status.phase`: Pending before the essays are stored, Suspended while suspended."""
    if snapshot.state == BatchStateEnum.INITIALIZING and not snapshot.essays_loaded:
        return "Pending"
    if snapshot.suspended and not snapshot.state.is_terminal:
        return "Suspended"
    return _PHASES[snapshot.state]


def progress_percent(snapshot: BatchSnapshot) -> int:
    """Whole percent of the budget answered with a winner; 100 when COMPLETED; 0..100."""
    if snapshot.state == BatchStateEnum.COMPLETED:
        return 100
    if snapshot.budget <= 0:
        return 0
    return max(0, min(100, (100 * snapshot.completed) // snapshot.budget))


def _of(s: BatchSnapshot) -> str:
    """ ", budget N comparisons" and, when the budget is every distinct pair, that it is."""
    if s.budget <= 0:
        return ""
    capped = (
        " (every distinct pair once)" if s.essays >= 2 and s.budget == all_pairs(s.essays) else ""
    )
    return f"; budget {s.budget} comparisons{capped}"


def desired_conditions(snapshot: BatchSnapshot) -> list[DesiredCondition]:
    """Every condition for `snapshot` (without transition times), `Ready` first."""
    s = snapshot
    terminal = s.state.is_terminal
    if terminal:
        status: ConditionStatus = "True" if s.state == BatchStateEnum.COMPLETED else "False"
        succeeded = DesiredCondition("Succeeded", status, s.reason or s.state.title(), s.message)
    else:
        succeeded = DesiredCondition(
            "Succeeded", "Unknown", Reason.IN_PROGRESS, "The batch has not finished."
        )

    answered = f"{s.completed} of {s.submitted} comparisons answered with a winner"
    if terminal:
        progressing = DesiredCondition(
            "Progressing", "False", s.reason or s.state.title(), f"Finished: {answered}."
        )
    elif s.suspended:
        progressing = DesiredCondition(
            "Progressing", "False", Reason.SUSPENDED, f"Suspended in round {s.round}: {answered}."
        )
    elif not s.essays_loaded:
        progressing = DesiredCondition(
            "Progressing",
            "False",
            s.reason or Reason.LOADING_ESSAYS,
            s.message or "Loading essays.",
        )
    else:
        progressing = DesiredCondition(
            "Progressing", "True", _PHASES[s.state], f"Round {s.round}: {answered}{_of(s)}."
        )

    if s.suspended and not terminal:
        suspended = DesiredCondition(
            "Suspended",
            "True",
            Reason.SUSPEND_REQUESTED,
            "spec.suspend is true: no new comparisons are submitted.",
        )
    else:
        suspended = DesiredCondition("Suspended", "False", Reason.NOT_SUSPENDED, "")

    if s.essays_loaded:
        loaded = DesiredCondition(
            "EssaysLoaded", "True", Reason.ESSAYS_STORED, f"{s.essays} essays stored."
        )
    elif s.state == BatchStateEnum.FAILED:
        loaded = DesiredCondition(
            "EssaysLoaded", "False", s.reason or Reason.INVALID_ESSAYS, s.message
        )
    else:
        loaded = DesiredCondition(
            "EssaysLoaded",
            "Unknown" if not s.reason else "False",
            s.reason or Reason.LOADING,
            s.message or "Reading the essays.",
        )
    return [
        _ready_condition(s, progressing),
        succeeded,
        progressing,
        suspended,
        loaded,
        _order_condition(s.order_effect),
        _results_condition(s),
        _comparisons_condition(s),
    ]


def _ready_condition(s: BatchSnapshot, progressing: DesiredCondition) -> DesiredCondition:
    """`Ready`: True once the batch COMPLETED and its results ConfigMap holds the ranking.

    False otherwise, its reason saying why: the batch's final reason when it FAILED or was
    CANCELLED (it never becomes Ready: wait on `Succeeded` to learn that), WritingResults or
    ResultsConfigMapNotOwned after it COMPLETED, Progressing's reason while it runs.
    """
    if s.state == BatchStateEnum.COMPLETED:
        if s.results_config_map is not None:
            return DesiredCondition(
                "Ready",
                "True",
                Reason.RESULTS_READY,
                f"Completed ({s.reason or 'done'}): configmap/{s.results_config_map} holds "
                f"the ranking of {s.essays} essays.",
            )
        if s.results_blocked is not None:
            return DesiredCondition(
                "Ready", "False", Reason.RESULTS_CONFIG_MAP_NOT_OWNED, s.results_blocked
            )
        return DesiredCondition(
            "Ready",
            "False",
            Reason.WRITING_RESULTS,
            "Completed: the results ConfigMap is being written.",
        )
    if s.state.is_terminal:
        verb = "was cancelled" if s.state == BatchStateEnum.CANCELLED else "failed"
        detail = f": {s.message}" if s.message else "."
        return DesiredCondition(
            "Ready",
            "False",
            s.reason or s.state.title(),
            f"The batch {verb} and has no results{detail}",
        )
    return DesiredCondition("Ready", "False", progressing.reason, progressing.message)


def _results_condition(s: BatchSnapshot) -> DesiredCondition:
    """`ResultsWritten`: True once the results ConfigMap holds the final results, False when
    its name is taken by a ConfigMap the batch does not own, Unknown before."""
    if s.results_blocked is not None:
        return DesiredCondition(
            "ResultsWritten", "False", Reason.RESULTS_CONFIG_MAP_NOT_OWNED, s.results_blocked
        )
    if s.results_config_map is not None:
        return DesiredCondition(
            "ResultsWritten",
            "True",
            Reason.RESULTS_STORED,
            f"configmap/{s.results_config_map} holds the final results.",
        )
    return DesiredCondition(
        "ResultsWritten", "Unknown", Reason.IN_PROGRESS, "The batch has not finished."
    )


def _comparisons_condition(s: BatchSnapshot) -> DesiredCondition:
    """`ComparisonsWritten`: True once the comparisons ConfigMap holds every comparison, False
    when they do not fit in one (ComparisonsTooLarge) or its name is taken by a ConfigMap the
    batch does not own, Unknown before."""
    if s.comparisons_blocked is not None:
        reason, message = s.comparisons_blocked
        return DesiredCondition(
            "ComparisonsWritten", "False", reason or Reason.COMPARISONS_TOO_LARGE, message
        )
    if s.comparisons_config_map is not None:
        return DesiredCondition(
            "ComparisonsWritten",
            "True",
            Reason.COMPARISONS_STORED,
            f"configmap/{s.comparisons_config_map} holds every comparison (comparisons.csv).",
        )
    return DesiredCondition(
        "ComparisonsWritten", "Unknown", Reason.IN_PROGRESS, "The batch has not finished."
    )


def _order_condition(effect: OrderEffect | None) -> DesiredCondition:
    """`OrderEffect`: True when the judge favours one slot significantly (p < 0.01)."""
    if effect is None:
        return DesiredCondition(
            "OrderEffect", "Unknown", Reason.NOT_FITTED, "No fit yet to measure it."
        )
    numbers = (
        f"{effect.estimate:+.2f} logits for slot A (SE {effect.standard_error:.2f}, "
        f"p = {effect.p_value:.3g})"
    )
    if effect.significant:
        return DesiredCondition(
            "OrderEffect",
            "True",
            Reason.ORDER_EFFECT_SIGNIFICANT,
            f"The judge favours slot {'A' if effect.estimate > 0 else 'B'}: {numbers}. Each "
            "essay sits in both slots about equally often, so the ranking is balanced, but "
            "the judge's verdicts depend on the order it reads the essays in.",
        )
    return DesiredCondition("OrderEffect", "False", Reason.NO_ORDER_EFFECT, numbers + ".")


def build_status(
    snapshot: BatchSnapshot,
    previous_conditions: Sequence[Condition],
    *,
    now: datetime,
) -> CJBatchStatus:
    """The whole status of a batch; conditions keep their transition times when unchanged."""
    s = snapshot
    return CJBatchStatus(
        phase=phase_of(s),
        state=s.state,
        observed_generation=s.generation,
        conditions=merge_conditions(
            previous_conditions, desired_conditions(s), now=now, generation=s.generation
        ),
        essays=s.essays,
        submitted=s.submitted,
        completed=s.completed,
        failed=s.failed,
        pending=max(0, s.submitted - s.completed - s.failed),
        progress=f"{progress_percent(s)}%",
        round=s.round,
        budget=s.budget,
        reliability=None if s.reliability is None else round(s.reliability, 4),
        ssr=None if s.ssr is None else round(s.ssr, 4),
        max_score_change=None if s.max_score_change is None else round(s.max_score_change, 4),
        score_change_se=None if s.score_change_se is None else round(s.score_change_se, 4),
        order_effect=s.order_effect,
        grades=s.grades,
        judges=list(s.judges),
        misfitting_essays=s.misfitting_essays,
        cost_usd=round(s.cost_usd, 6),
        reserved_cost_usd=round(s.reserved_usd, 6),
        late_results=s.late_results,
        late_cost_usd=round(s.late_cost_usd, 6),
        tokens=TokenTotals(
            prompt=s.prompt_tokens, completion=s.completion_tokens, total=s.total_tokens
        ),
        started_at=s.started_at,
        completed_at=s.finished_at,
        last_update_time=now,
        top_essays=list(s.top),
        results_config_map=s.results_config_map,
        comparisons_config_map=s.comparisons_config_map,
    )


def status_patch(status: CJBatchStatus) -> dict[str, object]:
    """The merge-patch body for the status subresource (wire names; unset fields as null).

    Nulls make a merge patch remove fields that no longer apply (e.g. a cleared reliability).
    """
    return {"status": status.model_dump(mode="json", by_alias=True)}
