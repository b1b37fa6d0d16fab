"""The provider's Retry-After reaches the error event the worker publishes (and the operator
reads it back), from real SDK exceptions built on the SDKs' own HTTP response type."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from prometheus_client import CollectorRegistry

from cj_operator.accounting import retry_delay
from cj_workers.manifest import ModelManifest
from cj_workers.metrics import WorkerMetrics
from cj_workers.providers.base import RETRY_AFTER_MAX_SECONDS, JudgeAnswer, JudgeCall
from cj_workers.providers.sdk_errors import judge_error_from_sdk, parse_retry_after
from cj_workers.ratelimit import Reservation
from cj_workers.settings import WorkerSettings
from cj_workers.worker.processor import RequestProcessor
from common_core import (
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMErrorCode,
    LLMProviderType,
    QueuedRequest,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _response(status: int, headers: dict[str, str], url: str) -> httpx2.Response:
    return httpx2.Response(
        status,
        headers=headers,
        json={"error": {"type": "rate_limit_error", "message": "slow down"}},
        request=httpx2.Request("POST", url),
    )


ANTHROPIC_CLASSES: dict[int, type[anthropic.APIStatusError]] = {
    429: anthropic.RateLimitError,
    503: anthropic.ServiceUnavailableError,
    529: anthropic.OverloadedError,
}
OPENAI_CLASSES: dict[int, type[openai.APIStatusError]] = {
    429: openai.RateLimitError,
    503: openai.InternalServerError,
}
"""The classes each SDK raises for these statuses (its `_make_status_error`)."""


def anthropic_error(status: int, headers: dict[str, str]) -> anthropic.APIStatusError:
    """The exception `AsyncAnthropic` raises for a `status` answer with `headers`."""
    response = _response(status, headers, "https://api.anthropic.com/v1/messages")
    return ANTHROPIC_CLASSES[status]("slow down", response=response, body=None)


def openai_error(status: int, headers: dict[str, str]) -> openai.APIStatusError:
    """The exception `AsyncOpenAI` raises for a `status` answer with `headers`."""
    response = _response(status, headers, "https://api.openai.com/v1/chat/completions")
    return OPENAI_CLASSES[status]("slow down", response=response, body=None)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "Thu, 01 Jan 2026 00:00:30 GMT"}, 30.0),
        ({"retry-after": "Thu, 01 Jan 2026 00:00:30 -0000"}, 30.0),  # naive date: was a crash
        ({"retry-after": "Wed, 31 Dec 2025 23:00:00 GMT"}, 0.0),  # in the past
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "86400000"}, RETRY_AFTER_MAX_SECONDS),
        ({"retry-after": "Fri, 01 Jan 2027 00:00:00 GMT"}, RETRY_AFTER_MAX_SECONDS),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "1e999"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "Mon, 99 Foo 2026 25:61:00 GMT"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_bounded_and_garbage_ignored(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(httpx2.Headers(headers), NOW) == seconds


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (anthropic_error, 429, LLMErrorCode.PROVIDER_RATE_LIMIT),
        (anthropic_error, 503, LLMErrorCode.PROVIDER_UNAVAILABLE),
        (anthropic_error, 529, LLMErrorCode.PROVIDER_UNAVAILABLE),
        (openai_error, 429, LLMErrorCode.PROVIDER_RATE_LIMIT),
        (openai_error, 503, LLMErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "2500"}, 2.5), ({"retry-after": "x"}, None)],
)
def test_sdk_errors_carry_the_retry_after_into_the_details(
    make: Any,
    status: int,
    code: LLMErrorCode,
    headers: dict[str, str],
    seconds: float | None,
) -> None:
    exc = make(status, headers)
    assert exc.status_code == status
    err = judge_error_from_sdk(exc)
    assert err.code is code and err.retryable
    assert err.retry_after == seconds
    assert err.details.get("retry_after_seconds") == seconds


class RaisingJudge:
    """A judge whose SDK call fails with `exc` (mapped like the real judges map it)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        raise judge_error_from_sdk(self.exc)

    async def aclose(self) -> None:
        pass


class NoLimit:
    def limited(self, provider: LLMProviderType) -> bool:
        return False

    async def acquire(self, provider: LLMProviderType, tokens: int) -> Reservation | float:
        raise AssertionError("not limited")

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        raise AssertionError("not limited")


async def _published(exc: Exception, attempts: int) -> Any:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    async def never(_: str) -> bool:
        return False

    processor = RequestProcessor(
        WorkerSettings(CJ_WORKER_MAX_ATTEMPTS=attempts, CJ_WORKER_RETRY_AFTER_MAX_SECONDS=120),
        dict.fromkeys(LLMProviderType, RaisingJudge(exc)),
        ModelManifest.load(),
        NoLimit(),
        never,
        WorkerMetrics(CollectorRegistry()),
        sleep=sleep,
        rng=random.Random(0),
    )
    request = LLMComparisonRequest(
        user_prompt="p",
        essay_a="a",
        essay_b="b",
        callback_topic="test.cb",
        llm_config_overrides=LLMConfigOverrides(provider_override=LLMProviderType.ANTHROPIC),
    )
    result = (await processor.process(QueuedRequest.from_request(request, 60))).result
    assert result is not None and result.error_detail is not None
    return result, sleeps


@pytest.mark.parametrize(
    ("exc", "attempts", "seconds", "sleeps"),
    [
        (anthropic_error(429, {"retry-after": "7"}), 2, 7.0, [7.0]),  # retried, then given up
        (openai_error(503, {"retry-after-ms": "4500"}), 1, 4.5, []),
        (anthropic_error(529, {"retry-after": "600"}), 3, 600.0, []),  # beyond the worker's wait
        (openai_error(429, {"retry-after": "99999"}), 1, RETRY_AFTER_MAX_SECONDS, []),
    ],
)
async def test_the_published_error_event_carries_the_providers_retry_after(
    exc: Exception, attempts: int, seconds: float, sleeps: list[float]
) -> None:
    result, slept = await _published(exc, attempts)
    detail = result.error_detail
    assert detail.retryable
    assert detail.details["retry_after_seconds"] == seconds
    assert slept == sleeps
    # The operator's retry backoff reads it back (clamped to its own 1-300 s).
    assert retry_delay(result, 1, 2.0) == min(seconds, 300.0)


async def test_an_error_event_without_a_usable_retry_after_has_no_hint() -> None:
    result, _ = await _published(anthropic_error(429, {"retry-after": "whenever"}), 1)
    assert "retry_after_seconds" not in result.error_detail.details
    assert retry_delay(result, 1, 2.0) == 2.0  # the operator's own backoff
