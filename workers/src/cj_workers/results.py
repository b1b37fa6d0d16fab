"""Build the callback events (`EventEnvelope[LLMComparisonResultV1]`) the workers publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

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


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def trim_metadata(metadata: dict[str, Any], budget: int) -> tuple[dict[str, Any], list[str]]:
    """The keys of `metadata` that fit in `budget` bytes of JSON, smallest entries first (so
    routing keys such as batch_id and pair_id survive), and the names of the keys dropped."""
    sizes = sorted((_json_bytes({k: v}), k) for k, v in metadata.items())
    kept: dict[str, Any] = {}
    used = 2  # {}
    for size, key in sizes:
        if used + size + 1 <= budget:
            kept[key] = metadata[key]
            used += size + 1
    dropped = sorted(k for k in metadata if k not in kept)
    return kept, dropped


def too_large_result(
    result: LLMComparisonResultV1,
    *,
    event_bytes: int,
    limit: int,
    metadata_budget: int,
    service: str,
    refused_by_broker: bool = False,
) -> LLMComparisonResultV1:
    """The CONTENT_TOO_LONG error event that replaces `result`, whose envelope has
    `event_bytes` bytes, more than the publisher may send (`limit`, CJ_WORKER_MAX_EVENT_BYTES)
    or than the broker accepted (`refused_by_broker`).

    Same correlation and request ids, provider, model, tokens and cost already spent; the
    request metadata is trimmed to `metadata_budget` bytes of JSON (see `trim_metadata`) and
    the dropped keys are named in the details. Not retryable: the same request would give
    the same event.
    """
    kept, dropped = trim_metadata(result.request_metadata, metadata_budget)
    why = (
        f"the broker refused the result event of {event_bytes} bytes as too large"
        if refused_by_broker
        else f"the result event has {event_bytes} bytes; at most {limit} can be published "
        "(CJ_WORKER_MAX_EVENT_BYTES)"
    )
    original = "success" if result.error_detail is None else result.error_detail.error_code.value
    return LLMComparisonResultV1.model_validate(
        {
            **result.model_dump(exclude={"request_metadata", "error_detail"}),
            "winner": None,
            "justification": None,
            "confidence": None,
            "error_detail": ErrorDetail(
                error_code=LLMErrorCode.CONTENT_TOO_LONG,
                message=f"{why}; request_metadata was trimmed to fit" if dropped else why,
                correlation_id=result.correlation_id,
                service=service,
                operation="publish_result",
                retryable=False,
                details={
                    "request_id": result.request_id,
                    "provider": result.provider.value,
                    "event_bytes": event_bytes,
                    "limit": limit,
                    "refused_by_broker": refused_by_broker,
                    "original_status": original,
                    "dropped_metadata_keys": dropped,
                },
            ),
            "request_metadata": kept,
        }
    )


def poison_result(
    *,
    correlation_id: UUID,
    request_id: str,
    metadata: dict[str, Any],
    requested_at: datetime,
    deliveries: int,
    limit: int,
    service: str,
    provider: LLMProviderType,
    model: str,
) -> LLMComparisonResultV1:
    """The INTERNAL_ERROR event (not retryable) for an entry given up after `deliveries`
    deliveries, more than `limit` (CJ_WORKER_MAX_DELIVERIES): every worker that took it died or
    failed on it."""
    return LLMComparisonResultV1(
        request_id=request_id,
        correlation_id=correlation_id,
        error_detail=ErrorDetail(
            error_code=LLMErrorCode.INTERNAL_ERROR,
            message=f"the request was delivered to workers {deliveries} times (limit {limit}) "
            "without finishing; it was moved to the dead-letter stream",
            correlation_id=correlation_id,
            service=service,
            operation="process_comparison",
            retryable=False,
            details={
                "request_id": request_id,
                "provider": provider.value,
                "deliveries": deliveries,
                "max_deliveries": limit,
                "dead_lettered": True,
            },
        ),
        provider=provider,
        model=model,
        response_time_ms=0,
        token_usage=TokenUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0),
        cost_estimate=0.0,
        requested_at=requested_at,
        completed_at=datetime.now(UTC),
        request_metadata=metadata,
    )
