"""The CJBatch `status` as a pydantic model: the source of the CRD's status schema.

The operator is the only writer of `status` (one writer per field: the status patcher). Wire
names are camelCase; `phase` feeds the printer column, `conditions` follow metav1.Condition.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from common_core import BatchStateEnum

Phase = Literal[
    "Pending",
    "Initializing",
    "GeneratingPairs",
    "WaitingCallbacks",
    "Scoring",
    "Suspended",
    "Completed",
    "Failed",
    "Cancelled",
]
"""`status.phase`: the batch state in CamelCase, `Suspended` while suspended, `Pending` before
the essays are stored."""

ConditionStatus = Literal["True", "False", "Unknown"]

TOP_ESSAYS = 10
"""Essays listed in `status.topEssays`; the full ranking is in the results ConfigMap."""


class _StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Condition(_StatusModel):
    """A metav1.Condition: the latest observation of one aspect of the batch."""

    type: str = Field(min_length=1, max_length=316, description="Condition type, CamelCase.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason of the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: AwareDatetime = Field(
        description="When the status last changed (not when it was last observed)."
    )
    observed_generation: int = Field(
        default=0, ge=0, description="metadata.generation the condition was set for."
    )


class TokenTotals(_StatusModel):
    """Tokens the batch's comparisons used, as the providers reported them."""

    prompt: int = Field(default=0, ge=0, description="Prompt tokens.")
    completion: int = Field(default=0, ge=0, description="Completion tokens.")
    total: int = Field(default=0, ge=0, description="Total tokens.")


class OrderEffect(_StatusModel):
    """The judge's position bias: how much more often the essay in slot A wins than the
    scores predict (Bradley-Terry with an order parameter, cj_operator.scoring.order_effect)."""

    estimate: float = Field(description="Order effect for slot A (logits); > 0 favours slot A.")
    standard_error: float = Field(ge=0.0, description="Its standard error (logits).")
    p_value: float = Field(ge=0.0, le=1.0, description="Two-sided p value of no order effect.")
    significant: bool = Field(description="p value below 0.01 (condition OrderEffect=True).")


class GradeCount(_StatusModel):
    """How many essays have one projected grade."""

    grade: float = Field(description="An anchor grade.")
    essays: int = Field(ge=0, description="Essays whose projected grade it is.")


class Grades(_StatusModel):
    """Grades projected from anchor essays (metadata.anchorGrade) after the final fit:
    ordinal regression of the anchors' grades on the scale (cj_operator.scoring.grades)."""

    anchors: int = Field(ge=0, description="Anchor essays the projection used.")
    distribution: list[GradeCount] = Field(
        default_factory=list,
        description="Essays per projected grade (each essay's grade and 95% interval are in "
        "the results ConfigMap).",
    )


class JudgeSummary(_StatusModel):
    """One judge of the batch (a panel member, or the single judge) in the latest fit."""

    judge: str = Field(description="provider/model of the judge that answered.")
    comparisons: int = Field(ge=0, description="Its comparisons with a winner.")
    agreement: float | None = Field(
        default=None,
        description="Share of its verdicts won by the essay the batch's scale puts higher: "
        "its agreement with the panel.",
    )
    order_effect: float | None = Field(
        default=None, description="Its own slot-A effect (logits), the scale held fixed."
    )
    order_effect_se: float | None = Field(
        default=None, alias="orderEffectSE", description="Its standard error (logits)."
    )
    infit: float | None = Field(default=None, description="Infit mean square of its verdicts.")
    outfit: float | None = Field(
        default=None, description="Outfit mean square of its verdicts (above 1.5: misfitting)."
    )


class TopEssay(_StatusModel):
    """One essay of the current ranking's top."""

    id: str = Field(description="Essay id.")
    score: float = Field(description="Bradley-Terry score (logits, centred to mean 0).")
    standard_error: float = Field(ge=0.0, description="Standard error of the score.")
    rank: int = Field(ge=1, description="1 is best.")


class CJBatchStatus(_StatusModel):
    """`status` of a CJBatch, built from PostgreSQL (the single source of truth)."""

    phase: Phase = Field(default="Pending", description="Where the batch is (printer column).")
    state: BatchStateEnum | None = Field(
        default=None, description="The stored batch state (BatchStateEnum)."
    )
    observed_generation: int = Field(
        default=0, ge=0, description="metadata.generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (the results can be read), Succeeded (summary), Progressing, "
        "Suspended, EssaysLoaded, OrderEffect, ResultsWritten, ComparisonsWritten.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    essays: int = Field(default=0, ge=0, description="Essays in the batch.")
    submitted: int = Field(
        default=0,
        ge=0,
        description="Comparison requests handed to the provider API (retries included).",
    )
    completed: int = Field(default=0, ge=0, description="Requests answered with a winner.")
    failed: int = Field(
        default=0,
        ge=0,
        description="Requests that failed (error event, refused, or overdue); "
        "completed + failed <= submitted.",
    )
    pending: int = Field(
        default=0, ge=0, description="Requests without an answer yet (submitted-completed-failed)."
    )
    progress: str = Field(
        default="0%",
        pattern=r"^(100|[0-9]{1,2})%$",
        description="Comparisons with a winner over the batch's budget, 0% to 100%.",
    )
    round: int = Field(default=0, ge=0, description="Current pair-selection round (from 1).")
    budget: int = Field(
        default=0,
        ge=0,
        description="Most comparisons the batch asks for (retries not counted): "
        "ceil(essays x targetPerEssay / 2), capped by maxTotal and by the n(n-1)/2 distinct "
        "pairs.",
    )
    reliability: float | None = Field(
        default=None,
        description="Empirical-Bayes reliability of the latest fit (the share of the essays' "
        "ability variance the comparisons pin down, honest under adaptive pairing; "
        "spec.stopping.reliabilityTarget compares with it).",
    )
    ssr: float | None = Field(
        default=None,
        description="Scale separation reliability of the latest fit (inflated by adaptive "
        "pairing; reported for comparison with other CJ tools).",
    )
    judges: list[JudgeSummary] = Field(
        default_factory=list,
        description="Each judge's agreement with the scale, order effect and misfit.",
    )
    grades: Grades | None = Field(
        default=None, description="Projected grades, when the batch has anchor essays."
    )
    order_effect: OrderEffect | None = Field(
        default=None, description="The judge's position bias in the latest fit."
    )
    misfitting_essays: int = Field(
        default=0,
        ge=0,
        description="Essays whose outfit mean square is above 1.5 in the latest fit (listed "
        "in the results ConfigMap): the judge's verdicts on them are inconsistent.",
    )
    max_score_change: float | None = Field(
        default=None,
        ge=0.0,
        description="Largest change of an essay's score between the last two fits (logits).",
    )
    score_change_se: float | None = Field(
        default=None,
        alias="scoreChangeSE",
        ge=0.0,
        description="Root mean square change of the scores between the last two fits, in "
        "standard errors: what spec.stopping.scoreStabilitySE compares with.",
    )
    cost_usd: float = Field(
        default=0.0,
        alias="costUSD",
        ge=0.0,
        description="Estimated cost spent so far (USD): the answers' cost_estimate, late and "
        "duplicate answers included (lateCostUSD).",
    )
    reserved_cost_usd: float = Field(
        default=0.0,
        alias="reservedCostUSD",
        ge=0.0,
        description="Estimated cost (USD) reserved by the comparisons in flight; a comparison "
        "is submitted only while costUSD + reservedCostUSD + its own stays within "
        "spec.limits.maxCostUSD.",
    )
    late_results: int = Field(
        default=0,
        ge=0,
        description="Judge answers that came for a comparison already answered or given up "
        "(duplicates, late answers): not scored, but their cost is in costUSD.",
    )
    late_cost_usd: float = Field(
        default=0.0,
        alias="lateCostUSD",
        ge=0.0,
        description="Estimated cost (USD) of those late answers (part of costUSD).",
    )
    tokens: TokenTotals = Field(default_factory=TokenTotals, description="Tokens used.")
    started_at: AwareDatetime | None = Field(default=None, description="When the batch started.")
    completed_at: AwareDatetime | None = Field(
        default=None, description="When the batch reached COMPLETED, FAILED or CANCELLED."
    )
    last_update_time: AwareDatetime | None = Field(
        default=None, description="When this status was built."
    )
    top_essays: list[TopEssay] = Field(
        default_factory=list,
        max_length=TOP_ESSAYS,
        description="The top of the latest ranking (id, score, standardError, rank).",
    )
    results_config_map: str | None = Field(
        default=None,
        description="ConfigMap with the full results (results.csv, results.json), once final.",
    )
    comparisons_config_map: str | None = Field(
        default=None,
        description="ConfigMap with every comparison (comparisons.csv), once final; unset when "
        "they do not fit in one (condition ComparisonsWritten says so; they are in PostgreSQL).",
    )
