"""Kafka events: the envelope, topic names, and the LLM comparison result."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common_core.bounds import MODEL_NAME_MAX_CHARS, Int32, PlainText
from common_core.enums import EssayComparisonWinner, LLMProviderType
from common_core.errors import ErrorDetail

T = TypeVar("T", bound=BaseModel)

JUSTIFICATION_MAX_CHARS = 500
"""Upper bound of `LLMComparisonResultV1.justification` (the platform's event standard)."""


class ProcessingEvent(StrEnum):
    """Event types; `topic_name()` gives the Kafka topic each is published on."""

    LLM_COMPARISON_RESULT = "llm_provider.comparison_result"
    CJ_ASSESSMENT_COMPLETED = "cj_assessment.completed"

    def topic_name(self) -> str:
        """The versioned Kafka topic of this event type.

        e.g. `huleedu.llm_provider.comparison_result.v1` for LLM_COMPARISON_RESULT.
        """
        return _TOPICS[self]


_TOPICS: dict[ProcessingEvent, str] = {
    ProcessingEvent.LLM_COMPARISON_RESULT: "huleedu.llm_provider.comparison_result.v1",
    ProcessingEvent.CJ_ASSESSMENT_COMPLETED: "huleedu.cj_assessment.completed.v1",
}


class EventEnvelope(BaseModel, Generic[T]):
    """The platform's envelope around every Kafka event payload.

    `correlation_id` ties the event to the request that caused it. Tracing: `trace_id` is the
    W3C trace id (32 hex digits) when the producer had one, and `metadata` carries
    propagation headers such as `traceparent` verbatim.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str = Field(min_length=1)
    event_timestamp: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    source_service: str = Field(min_length=1)
    schema_version: int = Field(default=1, ge=1)
    correlation_id: UUID
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    metadata: dict[str, str] = Field(default_factory=dict)
    data: T


class TokenUsage(BaseModel):
    """Tokens an LLM call consumed, as the provider reported them."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: Int32 = 0
    completion_tokens: Int32 = 0
    total_tokens: Int32 = 0


class LLMComparisonResultV1(BaseModel):
    """The outcome of one pairwise comparison, published to the request's `callback_topic`.

    Exactly one of two shapes: success (`winner`, `justification` and `confidence` all set)
    or error (`error_detail` set, all three success fields unset). `confidence` is on the
    1-5 scale end to end. `cost_estimate` is in USD; `response_time_ms` in milliseconds.
    Every stored field is bounded (common_core.bounds): integers below 2^31, `model` at most
    200 characters, no control characters in text, a finite cost below 1,000,000 USD.

    Raises `pydantic.ValidationError` when both or neither shape is present, when a success
    is partial, or when a field is out of its bounds.
    """

    model_config = ConfigDict(frozen=True)

    request_id: PlainText = Field(min_length=1, max_length=128)
    correlation_id: UUID

    winner: EssayComparisonWinner | None = None
    justification: PlainText | None = Field(default=None, max_length=JUSTIFICATION_MAX_CHARS)
    confidence: float | None = Field(default=None, ge=1.0, le=5.0)

    error_detail: ErrorDetail | None = None

    provider: LLMProviderType
    model: PlainText = Field(min_length=1, max_length=MODEL_NAME_MAX_CHARS)
    response_time_ms: Int32
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_estimate: float = Field(ge=0.0, lt=1_000_000.0, allow_inf_nan=False)
    requested_at: AwareDatetime
    completed_at: AwareDatetime
    trace_id: PlainText | None = Field(default=None, max_length=64)
    request_metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _success_xor_error(self) -> Self:
        success_fields = (self.winner, self.justification, self.confidence)
        any_success = any(f is not None for f in success_fields)
        if any_success and self.error_detail is not None:
            raise ValueError("a result has either success fields or error_detail, not both")
        if not any_success and self.error_detail is None:
            raise ValueError("a result needs either success fields or error_detail")
        if any_success and any(f is None for f in success_fields):
            raise ValueError("winner, justification and confidence must be set together")
        return self

    @property
    def is_success(self) -> bool:
        """True when the judge gave a winner."""
        return self.winner is not None

    @property
    def is_error(self) -> bool:
        """True when the comparison failed; `error_detail` says why."""
        return self.error_detail is not None
