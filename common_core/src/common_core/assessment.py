"""The CJ assessment completion event (topic `huleedu.cj_assessment.completed.v1`)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common_core.enums import BatchStateEnum


class EssayRanking(BaseModel):
    """One essay's place in a finished batch.

    `score` is the Bradley-Terry log-strength, centred to mean 0 over the batch (logits);
    `standard_error` its standard error from the Fisher information; `rank` 1 is best.
    """

    model_config = ConfigDict(frozen=True)

    essay_id: str = Field(min_length=1)
    score: float
    standard_error: float = Field(ge=0.0)
    rank: int = Field(ge=1)
    comparisons: int = Field(ge=0)
    wins: int = Field(ge=0)


class CJAssessmentCompletedV1(BaseModel):
    """Published exactly once per CJBatch when it reaches a terminal state.

    `reliability` is the scale separation reliability (SSR) of the final fit, None when no
    fit was possible; `cost_usd` sums the results' `cost_estimate`.
    """

    model_config = ConfigDict(frozen=True)

    batch_id: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    state: BatchStateEnum
    reason: str
    essays: int = Field(ge=0)
    submitted: int = Field(ge=0)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    rounds: int = Field(ge=0)
    reliability: float | None = None
    provider: str
    model: str
    cost_usd: float = Field(ge=0.0)
    total_tokens: int = Field(ge=0)
    started_at: AwareDatetime
    finished_at: AwareDatetime
    rankings: list[EssayRanking]
