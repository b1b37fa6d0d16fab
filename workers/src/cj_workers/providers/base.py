"""What every judge takes and gives back, and the error it raises.

A judge is anything with `async judge(call) -> JudgeAnswer` (the `Judge` protocol); the
worker's retry, rate-limit and circuit-breaker logic sits around it and is the same for all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from common_core import EssayComparisonWinner, LLMErrorCode, LLMProviderType
from common_core.bounds import INT32_MAX


@dataclass(frozen=True)
class JudgeCall:
    """One comparison to judge.

    `system_prompt` and `user_message` are the full prompt (see `prompt.py`); `essay_a`,
    `essay_b` and `user_prompt` are the raw parts for judges that read text directly.
    `metadata` is the request's metadata: only the `simulated` judge may read it, and no
    judge may show it to a model. `timeout_seconds` bounds one call.
    """

    correlation_id: UUID
    provider: LLMProviderType
    model: str
    system_prompt: str
    user_message: str
    user_prompt: str
    essay_a: str
    essay_b: str
    temperature: float
    max_tokens: int
    timeout_seconds: float
    metadata: Mapping[str, Any] = field(default_factory=dict)


TOKENS_MAX = INT32_MAX // 2
"""Largest token count a judge may report for one call (prompt or completion): their sum, the
event's `total_tokens`, must fit an int32 column. Nothing real comes near it."""


@dataclass(frozen=True)
class JudgeAnswer:
    """A judge's verdict: `confidence` is on the 1-5 scale; token counts as reported.

    Raises JudgeError(INVALID_RESPONSE) when a token count is negative or above TOKENS_MAX
    (a provider reporting nonsense usage), so the answer becomes an error event naming it.
    """

    winner: EssayComparisonWinner
    justification: str
    confidence: float
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "completion_tokens"):
            count = getattr(self, name)
            if not 0 <= count <= TOKENS_MAX:
                raise JudgeError(
                    LLMErrorCode.INVALID_RESPONSE,
                    f"the provider reported {count} {name}; a count must be between 0 and "
                    f"{TOKENS_MAX}",
                    details={name: count},
                )


RETRY_AFTER_MAX_SECONDS = 3600.0
"""Longest Retry-After a worker reports (one hour): a provider's longer answer is reported as
this, so a consumer is never told to park a comparison for days."""


def bounded_retry_after(seconds: float | None) -> float | None:
    """`seconds` rounded to milliseconds and capped at `RETRY_AFTER_MAX_SECONDS`; None for
    None, NaN, an infinity or a negative number (a garbage hint is ignored, not guessed at)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return round(min(seconds, RETRY_AFTER_MAX_SECONDS), 3)


class JudgeError(Exception):
    """A call that gave no usable verdict.

    `retryable`: another attempt may succeed (429, 5xx, timeouts, connection errors).
    `retry_after`: seconds the provider asked us to wait (Retry-After), if it said, bounded by
    `bounded_retry_after`; it is also put in `details["retry_after_seconds"]` (unless the
    caller set that key), which the error event carries to the operator.
    `provider_fault`: counts towards the provider's circuit breaker (5xx, timeouts,
    connection errors), as opposed to faults of the request or the answer.
    """

    def __init__(
        self,
        code: LLMErrorCode,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        provider_fault: bool = False,
        details: Mapping[str, Any] | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = bounded_retry_after(retry_after)
        self.provider_fault = provider_fault
        self.details: dict[str, Any] = dict(details or {})
        if self.retry_after is not None:
            self.details.setdefault("retry_after_seconds", self.retry_after)
        # Usage is informational on an error: a count out of range is dropped, not stored.
        self.prompt_tokens = prompt_tokens if 0 <= prompt_tokens <= TOKENS_MAX else 0
        self.completion_tokens = completion_tokens if 0 <= completion_tokens <= TOKENS_MAX else 0

    def __repr__(self) -> str:
        return f"JudgeError({self.code.value}, {self.message!r}, retryable={self.retryable})"


class Judge(Protocol):
    """A provider client: one comparison in, one verdict out (or `JudgeError`)."""

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """Judge `call`; raises `JudgeError` for every failure it can name."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
