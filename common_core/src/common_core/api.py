"""The provider API's request and response models, and the queue entry built from a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common_core.bounds import MODEL_NAME_MAX_CHARS, PlainText
from common_core.enums import LLMProviderType, QueuePriority

KAFKA_TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
"""Legal Kafka topic names (Apache Kafka `Topic.validate`)."""


class LLMConfigOverrides(BaseModel):
    """Per-request judge settings; unset fields fall back to the worker's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider_override: LLMProviderType | None = None
    # The model is echoed in every result, whose `model` is bounded the same way.
    model_override: PlainText | None = Field(
        default=None, min_length=1, max_length=MODEL_NAME_MAX_CHARS
    )
    temperature_override: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens_override: int | None = Field(default=None, ge=1, le=100_000)
    system_prompt_override: str | None = Field(default=None, max_length=20_000)


class LLMComparisonRequest(BaseModel):
    """`POST /api/v1/comparison` body: compare two essays, answer on `callback_topic`.

    `callback_topic` is required: results travel only as Kafka events. `metadata` is echoed
    back in the result's `request_metadata` and is never shown to the judge.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_prompt: str = Field(min_length=1)
    essay_a: str = Field(min_length=1)
    essay_b: str = Field(min_length=1)
    callback_topic: str = Field(pattern=KAFKA_TOPIC_PATTERN)
    llm_config_overrides: LLMConfigOverrides | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    correlation_id: UUID = Field(default_factory=uuid4)
    priority: QueuePriority = QueuePriority.NORMAL


class LLMQueuedResponse(BaseModel):
    """`202 Accepted` answer: the request is queued; its result will arrive on Kafka.

    `estimated_wait_seconds` is the queue depth ahead of it divided by the recent drain rate.
    There is no status URL and no retry-after: nothing is polled.
    """

    model_config = ConfigDict(frozen=True)

    queue_id: UUID
    correlation_id: UUID
    status: Literal["queued"] = "queued"
    queued_at: AwareDatetime
    estimated_wait_seconds: float = Field(ge=0.0)
    priority: QueuePriority


class QueuedRequest(BaseModel):
    """One entry of the Redis request stream.

    A request not taken up by `expires_at` (queued_at + ttl_seconds) yields an error event,
    never a silent drop.
    """

    model_config = ConfigDict(frozen=True)

    queue_id: UUID = Field(default_factory=uuid4)
    request_data: LLMComparisonRequest
    callback_topic: str = Field(pattern=KAFKA_TOPIC_PATTERN)
    correlation_id: UUID
    priority: QueuePriority = QueuePriority.NORMAL
    queued_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    ttl_seconds: int = Field(default=3600, ge=1)

    @property
    def expires_at(self) -> datetime:
        """When the request stops being worth answering."""
        return self.queued_at + timedelta(seconds=self.ttl_seconds)

    @classmethod
    def from_request(cls, request: LLMComparisonRequest, ttl_seconds: int) -> QueuedRequest:
        """Wrap an accepted API request for the queue (callback and correlation copied)."""
        return cls(
            request_data=request,
            callback_topic=request.callback_topic,
            correlation_id=request.correlation_id,
            priority=request.priority,
            ttl_seconds=ttl_seconds,
        )


class ModelInfo(BaseModel):
    """One model a provider offers, with its list prices in USD per million tokens.

    The provider API's `GET /api/v1/models` answers a list of these (the workers' model
    manifest); the operator reads it to estimate a comparison's cost before submitting it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: LLMProviderType
    model: str = Field(min_length=1)
    input_usd_per_mtok: float = Field(ge=0.0)
    output_usd_per_mtok: float = Field(ge=0.0)
    description: str = ""
