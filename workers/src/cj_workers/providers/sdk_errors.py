"""Map the official SDKs' exceptions (Anthropic and OpenAI share one shape) to JudgeError."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anthropic
import openai

from cj_workers.providers.base import JudgeError, bounded_retry_after
from common_core import LLMErrorCode

_TOO_LONG = re.compile(
    r"too long|context length|context window|maximum context|too many tokens", re.I
)

_TIMEOUT = (anthropic.APITimeoutError, openai.APITimeoutError)
_CONNECTION = (anthropic.APIConnectionError, openai.APIConnectionError)
_STATUS = (anthropic.APIStatusError, openai.APIStatusError)
_BAD_BODY = (anthropic.APIResponseValidationError, openai.APIResponseValidationError)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date, RFC
    9110 section 10.2.3), bounded by `bounded_retry_after` (at most 3600 s).

    Returns None when absent or unreadable (garbage, NaN, infinite or negative); an
    unreadable `retry-after-ms` falls back to `Retry-After`; a date in the past is 0.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            parsed = bounded_retry_after(float(ms) / 1000)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return bounded_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or an obsolete zone: RFC 5322 says UTC
        when = when.replace(tzinfo=UTC)
    return bounded_retry_after(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()))


def _status_error(exc: anthropic.APIStatusError | openai.APIStatusError) -> JudgeError:
    status = exc.status_code
    details = {"status_code": status}
    message = f"provider answered HTTP {status}: {str(exc)[:300]}"
    if status == 429:
        return JudgeError(
            LLMErrorCode.PROVIDER_RATE_LIMIT,
            message,
            retryable=True,
            retry_after=parse_retry_after(exc.response.headers),
            details=details,
        )
    if status == 408:
        return JudgeError(
            LLMErrorCode.PROVIDER_TIMEOUT,
            message,
            retryable=True,
            provider_fault=True,
            details=details,
        )
    if status == 413 or (status == 400 and _TOO_LONG.search(str(exc))):
        return JudgeError(LLMErrorCode.CONTENT_TOO_LONG, message, details=details)
    if status in (401, 403, 404):
        return JudgeError(
            LLMErrorCode.INVALID_CONFIG,
            f"{message} (check the API key and the model name)",
            details=details,
        )
    if status in (503, 529):
        return JudgeError(
            LLMErrorCode.PROVIDER_UNAVAILABLE,
            message,
            retryable=True,
            provider_fault=True,
            retry_after=parse_retry_after(exc.response.headers),
            details=details,
        )
    if status >= 500:
        return JudgeError(
            LLMErrorCode.PROVIDER_API_ERROR,
            message,
            retryable=True,
            provider_fault=True,
            retry_after=parse_retry_after(exc.response.headers),
            details=details,
        )
    return JudgeError(LLMErrorCode.PROVIDER_API_ERROR, message, details=details)


def judge_error_from_sdk(exc: Exception) -> JudgeError:
    """The JudgeError for an exception raised by an SDK call.

    429 -> PROVIDER_RATE_LIMIT (retryable, Retry-After honoured and reported as
    `details["retry_after_seconds"]`, as for 5xx); timeouts -> PROVIDER_TIMEOUT;
    connection failures, 503 and 529 -> PROVIDER_UNAVAILABLE; other 5xx -> PROVIDER_API_ERROR
    (all retryable); 413 or "too long" 400 -> CONTENT_TOO_LONG; 401/403/404 -> INVALID_CONFIG;
    an unparseable response body -> PARSING_ERROR; other 4xx -> PROVIDER_API_ERROR.
    Anything else -> INTERNAL_ERROR.
    """
    if isinstance(exc, _TIMEOUT):
        return JudgeError(
            LLMErrorCode.PROVIDER_TIMEOUT,
            "provider call timed out",
            retryable=True,
            provider_fault=True,
        )
    if isinstance(exc, _CONNECTION):
        return JudgeError(
            LLMErrorCode.PROVIDER_UNAVAILABLE,
            f"cannot reach the provider: {exc}",
            retryable=True,
            provider_fault=True,
        )
    if isinstance(exc, _STATUS):
        return _status_error(exc)
    if isinstance(exc, (*_BAD_BODY, json.JSONDecodeError)):
        return JudgeError(
            LLMErrorCode.PARSING_ERROR, f"the provider's response body is malformed: {exc}"
        )
    return JudgeError(
        LLMErrorCode.INTERNAL_ERROR, f"unexpected error calling the provider: {exc!r}"[:1000]
    )
