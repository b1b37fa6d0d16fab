"""Turn one queued request into its result event: the worker's per-request logic.

Order: cancelled batch -> no event; expired -> PROVIDER_TIMEOUT error event; a judge that
CJ_ENABLED_PROVIDERS does not enable, or an unknown model -> INVALID_CONFIG; then the judge
call with the provider's circuit breaker, the shared rate limit and retries (429 with
Retry-After, 5xx, timeouts) up to `max_attempts`.
No Redis or Kafka here beyond the `RateGate` and `CancelCheck` protocols, so it is
unit-tested with fakes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from cj_plumbing.backoff import exponential_backoff
from cj_plumbing.breaker import CircuitBreaker
from cj_workers.manifest import ModelManifest
from cj_workers.metrics import WorkerMetrics
from cj_workers.providers.base import Judge, JudgeAnswer, JudgeCall, JudgeError
from cj_workers.providers.prompt import build_user_message, estimate_tokens, system_prompt
from cj_workers.ratelimit import Reservation
from cj_workers.results import error_result, success_result
from cj_workers.settings import WorkerSettings
from common_core import LLMComparisonResultV1, LLMErrorCode, LLMProviderType, QueuedRequest
from common_core.metadata_keys import BATCH_ID

log = structlog.get_logger(__name__)


class RateGate(Protocol):
    """The shared rate limiter as the processor sees it (see ratelimit.RedisRateLimiter)."""

    def limited(self, provider: LLMProviderType) -> bool: ...

    async def acquire(self, provider: LLMProviderType, tokens: int) -> Reservation | float: ...

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None: ...


CancelCheck = Callable[[str], Awaitable[bool]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """A finished request: the event to publish, or None when the batch was cancelled."""

    result: LLMComparisonResultV1 | None
    answered_at: float
    """time.monotonic() when the judge's final answer (or the error) was known."""


class RequestProcessor:
    """Applies the rules in the module docstring to one QueuedRequest."""

    def __init__(
        self,
        settings: WorkerSettings,
        judges: Mapping[LLMProviderType, Judge],
        manifest: ModelManifest,
        rate_gate: RateGate,
        is_cancelled: CancelCheck,
        metrics: WorkerMetrics,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._s = settings
        self._judges = judges
        self._manifest = manifest
        self._rate = rate_gate
        self._is_cancelled = is_cancelled
        self._metrics = metrics
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.breakers = {
            p: CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_reset_seconds)
            for p in LLMProviderType
        }

    async def process(self, queued: QueuedRequest) -> Outcome:
        """The outcome for `queued`; never raises for a failure it can name (those become
        error events); unexpected exceptions become INTERNAL_ERROR events."""
        overrides = queued.request_data.llm_config_overrides
        provider = (overrides.provider_override if overrides else None) or self._s.default_provider
        model = (overrides.model_override if overrides else None) or self._s.default_models[
            provider
        ]
        batch_id = queued.request_data.metadata.get(BATCH_ID)
        if batch_id is not None and await self._is_cancelled(str(batch_id)):
            self._metrics.skipped.inc()
            log.info("skipped: batch cancelled", batch_id=str(batch_id))
            return Outcome(None, time.monotonic())
        started = time.monotonic()
        try:
            result = await self._judge(queued, provider, model, started)
        except Exception as exc:
            log.exception("unexpected error while judging")
            result = self._error(
                queued,
                provider,
                model,
                started,
                JudgeError(LLMErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:1000]),
            )
        detail = result.error_detail
        status = "success" if detail is None else detail.error_code.value
        self._metrics.requests.labels(provider.value, status).inc()
        self._metrics.response_duration.labels(provider.value).observe(time.monotonic() - started)
        tokens = result.token_usage
        if tokens.prompt_tokens:
            self._metrics.tokens.labels(provider.value, "prompt").inc(tokens.prompt_tokens)
        if tokens.completion_tokens:
            self._metrics.tokens.labels(provider.value, "completion").inc(tokens.completion_tokens)
        if result.cost_estimate:
            self._metrics.cost.labels(provider.value).inc(result.cost_estimate)
        return Outcome(result, time.monotonic())

    def _error(
        self,
        queued: QueuedRequest,
        provider: LLMProviderType,
        model: str,
        started: float,
        err: JudgeError,
        extra: dict[str, Any] | None = None,
    ) -> LLMComparisonResultV1:
        return error_result(
            queued,
            err.code,
            err.message,
            service=self._s.service_name,
            provider=provider,
            model=model,
            retryable=err.retryable,
            details={**err.details, **(extra or {})},
            response_time_ms=int((time.monotonic() - started) * 1000),
            prompt_tokens=err.prompt_tokens,
            completion_tokens=err.completion_tokens,
            cost_usd=self._manifest.cost_usd(
                provider, model, err.prompt_tokens, err.completion_tokens
            ),
        )

    async def _judge(
        self, queued: QueuedRequest, provider: LLMProviderType, model: str, started: float
    ) -> LLMComparisonResultV1:
        now = datetime.now(UTC)
        if now >= queued.expires_at:
            waited = (now - queued.queued_at).total_seconds()
            return self._error(
                queued,
                provider,
                model,
                started,
                JudgeError(
                    LLMErrorCode.PROVIDER_TIMEOUT,
                    f"request expired in the queue: waited {waited:.0f} s, ttl "
                    f"{queued.ttl_seconds} s",
                    retryable=True,
                ),
                {"expired": True, "ttl_seconds": queued.ttl_seconds},
            )
        problem = self._s.provider_refusal(provider) or self._manifest.check(provider, model)
        if problem:
            return self._error(
                queued, provider, model, started, JudgeError(LLMErrorCode.INVALID_CONFIG, problem)
            )
        call = self._call(queued, provider, model)
        answer = await self._call_with_retries(call, queued)
        if isinstance(answer, JudgeError):
            return self._error(queued, provider, model, started, answer)
        return success_result(
            queued,
            answer,
            provider=provider,
            model=model,
            response_time_ms=int((time.monotonic() - started) * 1000),
            cost_usd=self._manifest.cost_usd(
                provider, model, answer.prompt_tokens, answer.completion_tokens
            ),
            justification_max_chars=self._s.justification_max_chars,
        )

    def _call(self, queued: QueuedRequest, provider: LLMProviderType, model: str) -> JudgeCall:
        req = queued.request_data
        o = req.llm_config_overrides
        return JudgeCall(
            correlation_id=queued.correlation_id,
            provider=provider,
            model=model,
            system_prompt=system_prompt(o.system_prompt_override if o else None),
            user_message=build_user_message(req.user_prompt, req.essay_a, req.essay_b),
            user_prompt=req.user_prompt,
            essay_a=req.essay_a,
            essay_b=req.essay_b,
            temperature=(
                o.temperature_override
                if o and o.temperature_override is not None
                else self._s.temperature
            ),
            max_tokens=(o.max_tokens_override if o else None) or self._s.max_tokens,
            timeout_seconds=self._s.provider_timeout_seconds,
            metadata=req.metadata,
        )

    async def _call_with_retries(
        self, call: JudgeCall, queued: QueuedRequest
    ) -> JudgeAnswer | JudgeError:
        judge = self._judges[call.provider]
        breaker = self.breakers[call.provider]
        estimate = estimate_tokens(call.system_prompt, call.user_message) + call.max_tokens
        last: JudgeError | None = None
        for attempt in range(1, self._s.max_attempts + 1):
            wait = breaker.try_acquire()
            self._metrics.breaker_open.labels(call.provider.value).set(0 if wait is None else 1)
            if wait is not None:
                return JudgeError(
                    LLMErrorCode.PROVIDER_UNAVAILABLE,
                    f"circuit breaker for {call.provider.value} is open after repeated "
                    "provider failures",
                    retryable=True,
                    details={"circuit": "open", "retry_after_seconds": round(wait, 1)},
                )
            reservation = await self._reserve(call.provider, estimate, queued)
            if isinstance(reservation, JudgeError):
                breaker.release()
                return reservation
            try:
                answer = await asyncio.wait_for(
                    judge.judge(call), self._s.provider_timeout_seconds + 5
                )
            except TimeoutError:
                last = JudgeError(
                    LLMErrorCode.PROVIDER_TIMEOUT,
                    "provider call timed out",
                    retryable=True,
                    provider_fault=True,
                )
            except JudgeError as exc:
                last = exc
            else:
                breaker.record_success()
                await self._settle(reservation, answer.prompt_tokens + answer.completion_tokens)
                return answer
            await self._settle(reservation, last.prompt_tokens + last.completion_tokens)
            if last.provider_fault:
                breaker.record_failure()
            else:
                breaker.record_success()
            if not last.retryable or attempt == self._s.max_attempts:
                break
            if last.retry_after is not None and last.retry_after > self._s.retry_after_max_seconds:
                break
            delay = (
                last.retry_after
                if last.retry_after is not None
                else exponential_backoff(
                    attempt,
                    base=self._s.retry_base_seconds,
                    cap=self._s.retry_max_seconds,
                    rng=self._rng,
                )
            )
            self._metrics.retries.labels(call.provider.value, last.code.value).inc()
            log.info(
                "retrying provider call",
                provider=call.provider.value,
                attempt=attempt,
                code=last.code.value,
                delay_s=round(delay, 3),
            )
            await self._sleep(delay)
        assert last is not None
        last.details.setdefault("attempts", attempt)
        return last

    async def _reserve(
        self, provider: LLMProviderType, tokens: int, queued: QueuedRequest
    ) -> Reservation | JudgeError | None:
        if not self._rate.limited(provider):
            return None
        while True:
            got = await self._rate.acquire(provider, tokens)
            if isinstance(got, Reservation):
                return got
            if datetime.now(UTC).timestamp() + got >= queued.expires_at.timestamp():
                return JudgeError(
                    LLMErrorCode.PROVIDER_RATE_LIMIT,
                    f"the shared rate limit of {provider.value} leaves no room before the "
                    "request expires",
                    retryable=True,
                )
            await self._sleep(got)

    async def _settle(self, reservation: Reservation | None, actual: int) -> None:
        if reservation is not None:
            await self._rate.settle(reservation, actual)
