"""Builders of valid contract objects (comparison results) for unit and integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from common_core import (
    EssayComparisonWinner,
    LLMComparisonResultV1,
    LLMErrorCode,
    LLMProviderType,
    TokenUsage,
)
from common_core.errors import ErrorDetail

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def success(
    cid: UUID | None = None,
    winner: EssayComparisonWinner = EssayComparisonWinner.ESSAY_A,
    cost: float = 0.001,
    tokens: tuple[int, int] = (100, 20),
    **metadata: Any,
) -> LLMComparisonResultV1:
    """A success result for correlation id `cid`."""
    return LLMComparisonResultV1(
        request_id="req-1",
        correlation_id=cid or uuid4(),
        winner=winner,
        justification="A is clearer.",
        confidence=4.0,
        provider=LLMProviderType.MOCK,
        model="mock-1",
        response_time_ms=12,
        token_usage=TokenUsage(
            prompt_tokens=tokens[0], completion_tokens=tokens[1], total_tokens=sum(tokens)
        ),
        cost_estimate=cost,
        requested_at=NOW,
        completed_at=NOW,
        request_metadata=metadata,
    )


def failure(
    cid: UUID | None = None,
    code: LLMErrorCode = LLMErrorCode.PROVIDER_TIMEOUT,
    cost: float = 0.0,
) -> LLMComparisonResultV1:
    """An error result for correlation id `cid`."""
    return LLMComparisonResultV1(
        request_id="req-2",
        correlation_id=cid or uuid4(),
        error_detail=ErrorDetail(
            error_code=code,
            message="it failed",
            service="cj-provider",
            operation="compare",
        ),
        provider=LLMProviderType.MOCK,
        model="mock-1",
        response_time_ms=3,
        cost_estimate=cost,
        requested_at=NOW,
        completed_at=NOW,
    )
