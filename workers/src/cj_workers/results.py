"""Build the callback events (`EventEnvelope[LLMComparisonResultV1]`) the workers publish."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cj_workers.providers.base import JudgeAnswer
from common_core import (
    ErrorDetail,
    EventEnvelope,
    LLMComparisonResultV1,
    LLMErrorCode,
    LLMProviderType,
    ProcessingEvent,
    QueuedRequest,
    TokenUsage,
)
from common_core.bounds import strip_control_characters
from common_core.metadata_keys import BATCH_ID


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def success_result(
    queued: QueuedRequest,
    answer: JudgeAnswer,
    *,
    provider: LLMProviderType,
    model: str,
    response_time_ms: int,
    cost_usd: float,
    justification_max_chars: int,
    trace_id: str | None = None,
) -> LLMComparisonResultV1:
    """The success event for `queued`: the judge's verdict, usage, cost and echoed metadata."""
    return LLMComparisonResultV1(
        request_id=str(queued.queue_id),
        correlation_id=queued.correlation_id,
        winner=answer.winner,
        justification=truncate(
            str(strip_control_characters(answer.justification)), justification_max_chars
        ),
        confidence=answer.confidence,
        provider=provider,
        model=model,
        response_time_ms=response_time_ms,
        token_usage=TokenUsage(
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            total_tokens=answer.prompt_tokens + answer.completion_tokens,
        ),
        cost_estimate=cost_usd,
        requested_at=queued.queued_at,
        completed_at=datetime.now(UTC),
        trace_id=trace_id,
        request_metadata=dict(queued.request_data.metadata),
    )


def error_result(
    queued: QueuedRequest,
    code: LLMErrorCode,
    message: str,
    *,
    service: str,
    provider: LLMProviderType,
    model: str,
    retryable: bool = False,
    details: dict[str, Any] | None = None,
    response_time_ms: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: float = 0.0,
    trace_id: str | None = None,
) -> LLMComparisonResultV1:
    """The error event for `queued`: an ErrorDetail, and the tokens and cost already spent."""
    return LLMComparisonResultV1(
        request_id=str(queued.queue_id),
        correlation_id=queued.correlation_id,
        error_detail=ErrorDetail(
            error_code=code,
            message=message[:2000] or code.value,
            correlation_id=queued.correlation_id,
            service=service,
            operation="process_comparison",
            retryable=retryable,
            details={
                "request_id": str(queued.queue_id),
                "provider": provider.value,
                **(details or {}),
            },
        ),
        provider=provider,
        model=model,
        response_time_ms=response_time_ms,
        token_usage=TokenUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
        cost_estimate=cost_usd,
        requested_at=queued.queued_at,
        completed_at=datetime.now(UTC),
        trace_id=trace_id,
        request_metadata=dict(queued.request_data.metadata),
    )


def envelope(result: LLMComparisonResultV1, source_service: str) -> bytes:
    """The Kafka message value: `EventEnvelope[LLMComparisonResultV1]` as UTF-8 JSON.

    The envelope's metadata carries the batch id (when the request had one) so consumers can
    route without parsing the payload.
    """
    batch_id = result.request_metadata.get(BATCH_ID)
    env = EventEnvelope[LLMComparisonResultV1](
        event_type=ProcessingEvent.LLM_COMPARISON_RESULT.value,
        source_service=source_service,
        correlation_id=result.correlation_id,
        trace_id=result.trace_id,
        metadata={BATCH_ID: str(batch_id)} if batch_id is not None else {},
        data=result,
    )
    return env.model_dump_json().encode()
