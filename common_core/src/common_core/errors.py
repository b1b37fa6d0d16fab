"""Error codes and the structured error carried by error events and HTTP error bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common_core.bounds import CleanedText, PlainText


class LLMErrorCode(StrEnum):
    """Why an LLM comparison failed (the platform's 14 codes and their wire values)."""

    PROVIDER_UNAVAILABLE = "LLM_PROVIDER_UNAVAILABLE"
    PROVIDER_RATE_LIMIT = "LLM_PROVIDER_RATE_LIMIT"
    PROVIDER_TIMEOUT = "LLM_PROVIDER_TIMEOUT"
    PROVIDER_API_ERROR = "LLM_PROVIDER_API_ERROR"
    INVALID_PROMPT = "LLM_INVALID_PROMPT"
    CONTENT_TOO_LONG = "LLM_CONTENT_TOO_LONG"
    INVALID_CONFIG = "LLM_INVALID_CONFIG"
    QUEUE_FULL = "LLM_QUEUE_FULL"
    INTERNAL_ERROR = "LLM_INTERNAL_ERROR"
    CALLBACK_TOPIC_MISSING = "LLM_CALLBACK_TOPIC_MISSING"
    INVALID_CALLBACK_TOPIC = "LLM_INVALID_CALLBACK_TOPIC"
    PARSING_ERROR = "LLM_PARSING_ERROR"
    INVALID_RESPONSE = "LLM_INVALID_RESPONSE"
    COST_LIMIT_EXCEEDED = "LLM_COST_LIMIT_EXCEEDED"


class ErrorDetail(BaseModel):
    """A structured error: what failed, where, and whether trying again may help.

    `retryable` is the producer's judgement (a rate limit is, a prompt too long is not);
    consumers decide their own retry budget. Control characters in `message` (it often
    quotes an exception) are removed, so an error can always be reported and stored.
    """

    model_config = ConfigDict(frozen=True)

    error_code: LLMErrorCode
    message: CleanedText = Field(min_length=1, max_length=2000)
    correlation_id: UUID | None = None
    timestamp: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    service: PlainText = Field(min_length=1, max_length=128)
    operation: PlainText = Field(min_length=1, max_length=128)
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
