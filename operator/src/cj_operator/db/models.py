"""The operator's tables (SQLAlchemy 2 declarative): batches, essays, comparison pairs, scores,
late results.

PostgreSQL is the single source of truth; the CJBatch status is built from these rows.
Timestamps are timezone-aware (timestamptz). Deleting a batch row cascades to its essays,
pairs, scores and late results. A CHECK keeps `completed + failed <= submitted` on every batch.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cj_operator.spec import CJBatchSpec
from common_core import BatchStateEnum

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PairStatus(StrEnum):
    """Life of one comparison request (one row of cj_comparison_pairs)."""

    PENDING = "PENDING"
    """Created and counted as submitted; the HTTP call has not (yet) confirmed it."""
    SUBMITTED = "SUBMITTED"
    """Queued by the provider API; waiting for the callback."""
    SUCCEEDED = "SUCCEEDED"
    """The callback carried a winner."""
    FAILED = "FAILED"
    """Refused, an error callback, or overdue; `needs_retry` says whether it is retried."""


_STATE = Enum(BatchStateEnum, name="cj_batch_state", native_enum=False, length=32)
_PAIR_STATUS = Enum(PairStatus, name="cj_pair_status", native_enum=False, length=16)


def _tz() -> DateTime:
    return DateTime(timezone=True)


class Batch(Base):
    """One CJBatch: its resolved settings, state, counters and latest fit summary.

    Counters count comparison requests (retries included): `submitted` when handed to the
    provider API, `completed` with a winner, `failed` refused/error/overdue.
    `budget` is the most comparisons (pairs, retries excluded) the batch may ask for.
    `cost_usd` and the token counters are everything spent, `late_cost_usd` included: the
    cost of `late_results`, answers for a comparison that already had its answer or had been
    given up (see `LateResult`).
    """

    __tablename__ = "cj_batches"
    __table_args__ = (
        CheckConstraint("completed + failed <= submitted", name="answered_le_submitted"),
        CheckConstraint("submitted >= 0 AND completed >= 0 AND failed >= 0", name="counts"),
        Index("ix_cj_batches_namespace_name", "namespace", "name"),
        Index("ix_cj_batches_state", "state"),
    )

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    state: Mapped[BatchStateEnum] = mapped_column(_STATE, default=BatchStateEnum.INITIALIZING)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    essays_count: Mapped[int] = mapped_column(Integer, default=0)
    budget: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    min_success_rate: Mapped[float] = mapped_column(Double, default=0.8)
    max_cost_usd: Mapped[float | None] = mapped_column(Double, nullable=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    submitted: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    late_results: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    late_cost_usd: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    reliability: Mapped[float | None] = mapped_column(Double, nullable=True)
    ssr: Mapped[float | None] = mapped_column(Double, nullable=True)
    fitted_results: Mapped[int | None] = mapped_column(Integer, nullable=True)
    order_effect: Mapped[float | None] = mapped_column(Double, nullable=True)
    order_effect_se: Mapped[float | None] = mapped_column(Double, nullable=True)
    order_effect_p: Mapped[float | None] = mapped_column(Double, nullable=True)
    judge_fit: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB, nullable=True)
    max_score_change: Mapped[float | None] = mapped_column(Double, nullable=True)
    score_change_se: Mapped[float | None] = mapped_column(Double, nullable=True)
    grade_model: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    reason: Mapped[str] = mapped_column(String(128), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(_tz(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        _tz(), server_default=func.now(), onupdate=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    results_written_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    results_blocked: Mapped[str | None] = mapped_column(Text, nullable=True)
    comparisons_written_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    comparisons_blocked: Mapped[str | None] = mapped_column(Text, nullable=True)
    comparisons_blocked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    completion_published_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)

    # SQLAlchemy reads this declarative class attribute (mapper configuration).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    def parsed_spec(self) -> CJBatchSpec:
        """The spec stored with the batch, validated again (raises pydantic.ValidationError)."""
        return CJBatchSpec.model_validate(self.spec)


class Essay(Base):
    """One essay of a batch; `idx` (0..n-1) is its position in the scoring arrays."""

    __tablename__ = "cj_essays"
    __table_args__ = (
        UniqueConstraint("batch_uid", "idx", name="uq_cj_essays_batch_idx"),
        UniqueConstraint("batch_uid", "essay_id", name="uq_cj_essays_batch_essay_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_uid: Mapped[str] = mapped_column(
        ForeignKey("cj_batches.uid", ondelete="CASCADE"), index=True
    )
    idx: Mapped[int] = mapped_column(Integer)
    essay_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)


class ComparisonPair(Base):
    """One comparison request: essays in slot A and B, its round and attempt, and its result.

    A retry is a new row (new correlation_id, attempt + 1, `retry_of_id` the failed row).
    `estimate_usd` is the a-priori cost estimate and `reserved_usd` what the row reserved under
    the batch's maxCostUSD (`cj_operator.costing`); a reservation is held while the row is
    PENDING or SUBMITTED. `answer_completed_at` is the recorded answer's `completed_at` (the
    judge call's identity: a redelivered event has the same one, a second call another).
    """

    __tablename__ = "cj_comparison_pairs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["batch_uid", "essay_a_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            ondelete="CASCADE",
            name="fk_cj_comparison_pairs_essay_a",
        ),
        ForeignKeyConstraint(
            ["batch_uid", "essay_b_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            ondelete="CASCADE",
            name="fk_cj_comparison_pairs_essay_b",
        ),
        CheckConstraint("essay_a_idx <> essay_b_idx", name="distinct_essays"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index("ix_cj_comparison_pairs_batch_status", "batch_uid", "status"),
        Index("ix_cj_comparison_pairs_status_submitted_at", "status", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_uid: Mapped[str] = mapped_column(
        ForeignKey("cj_batches.uid", ondelete="CASCADE", name="fk_cj_comparison_pairs_batch")
    )
    correlation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    round: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("cj_comparison_pairs.id", ondelete="SET NULL"), nullable=True
    )
    essay_a_idx: Mapped[int] = mapped_column(Integer)
    essay_b_idx: Mapped[int] = mapped_column(Integer)
    judge_idx: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[PairStatus] = mapped_column(_PAIR_STATUS, default=PairStatus.PENDING)
    needs_retry: Mapped[bool] = mapped_column(Boolean, default=False)
    retried: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(_tz(), server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    retry_not_before: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)
    winner: Mapped[str | None] = mapped_column(String(8), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Double, nullable=True)
    justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    estimate_usd: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    reserved_usd: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    answer_completed_at: Mapped[datetime | None] = mapped_column(_tz(), nullable=True)


class LateResult(Base):
    """A judge call answered after its comparison already had an answer (`duplicate`) or had
    been given up or its batch finished (`stale`). Not used for scoring; its cost was spent
    and is counted in the batch's `cost_usd` once per call: (correlation_id, completed_at)
    is unique, so a redelivered event is not counted twice.
    """

    __tablename__ = "cj_late_results"
    __table_args__ = (
        UniqueConstraint("correlation_id", "completed_at", name="uq_cj_late_results_call"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_uid: Mapped[str] = mapped_column(
        ForeignKey("cj_batches.uid", ondelete="CASCADE", name="fk_cj_late_results_batch"),
        index=True,
    )
    pair_id: Mapped[int] = mapped_column(
        ForeignKey("cj_comparison_pairs.id", ondelete="CASCADE", name="fk_cj_late_results_pair")
    )
    correlation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    completed_at: Mapped[datetime] = mapped_column(_tz())
    outcome: Mapped[str] = mapped_column(String(16))
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(_tz(), server_default=func.now())


class Score(Base):
    """An essay's latest Bradley-Terry score, standard error and rank in its batch."""

    __tablename__ = "cj_scores"
    __table_args__ = (
        ForeignKeyConstraint(
            ["batch_uid", "essay_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            ondelete="CASCADE",
            name="fk_cj_scores_essay",
        ),
    )

    batch_uid: Mapped[str] = mapped_column(
        ForeignKey("cj_batches.uid", ondelete="CASCADE", name="fk_cj_scores_batch"),
        primary_key=True,
    )
    essay_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    score: Mapped[float] = mapped_column(Double)
    standard_error: Mapped[float] = mapped_column(Double)
    rank: Mapped[int] = mapped_column(Integer)
    comparisons: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    infit: Mapped[float | None] = mapped_column(Double, nullable=True)
    outfit: Mapped[float | None] = mapped_column(Double, nullable=True)
    projected_grade: Mapped[float | None] = mapped_column(Double, nullable=True)
    grade_low: Mapped[float | None] = mapped_column(Double, nullable=True)
    grade_high: Mapped[float | None] = mapped_column(Double, nullable=True)
    grade_expected: Mapped[float | None] = mapped_column(Double, nullable=True)
    fitted_round: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        _tz(), server_default=func.now(), onupdate=func.now()
    )
