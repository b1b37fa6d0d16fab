"""`mock` judge: latency and fault injection for tests and benchmarks.

The model name carries directives as a query string, e.g. ``mock?latency_ms=200&fail=rate_limit
&fail_times=2&retry_after=0.1``:

- ``latency_ms``: sleep this long per call (default CJ_WORKER_MOCK_LATENCY_MS).
- ``fail``: ``rate_limit`` (429), ``server_error`` (500), ``unavailable`` (503), ``timeout``,
  ``bad_request`` (400), ``auth`` (401), ``too_long`` (413) - the same JudgeError a real
  provider's answer would map to.
- ``fail_times``: fail only the first N calls of a request (default: every call).
- ``retry_after``: seconds sent with ``rate_limit``/``unavailable``.
- ``answer``: ``malformed`` (not JSON), ``bad_confidence`` (confidence 7), ``refusal``,
  ``no_winner`` (a winner naming neither essay) - exercises answer validation.
- ``winner``: ``a`` or ``b``; default: the longer essay (ties: essay_a's text sorts first).

Without directives, calls fail at random with probability CJ_WORKER_MOCK_ERROR_RATE (500).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from urllib.parse import parse_qs

from cj_workers.providers.answer import parse_answer_text
from cj_workers.providers.base import JudgeAnswer, JudgeCall, JudgeError
from common_core import EssayComparisonWinner, LLMErrorCode

_FAILURES: dict[str, tuple[LLMErrorCode, bool, bool]] = {
    # name: (code, retryable, provider_fault)
    "rate_limit": (LLMErrorCode.PROVIDER_RATE_LIMIT, True, False),
    "server_error": (LLMErrorCode.PROVIDER_API_ERROR, True, True),
    "unavailable": (LLMErrorCode.PROVIDER_UNAVAILABLE, True, True),
    "timeout": (LLMErrorCode.PROVIDER_TIMEOUT, True, True),
    "bad_request": (LLMErrorCode.PROVIDER_API_ERROR, False, False),
    "auth": (LLMErrorCode.INVALID_CONFIG, False, False),
    "too_long": (LLMErrorCode.CONTENT_TOO_LONG, False, False),
}
_ANSWERS = {
    "malformed": '{"winner": "essay_a", "justification": "cut off',
    "bad_confidence": '{"winner": "essay_a", "justification": "A is clearer.", "confidence": 7}',
    "no_winner": '{"winner": "both", "justification": "Equal.", "confidence": 3}',
}


def parse_directives(model: str) -> dict[str, str]:
    """The query-string directives of a mock model name (last value wins).

    Raises `JudgeError(INVALID_CONFIG)` for an unknown directive or value.
    """
    _, _, query = model.partition("?")
    directives = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    allowed = {"latency_ms", "fail", "fail_times", "retry_after", "answer", "winner"}
    unknown = set(directives) - allowed
    if unknown:
        raise JudgeError(
            LLMErrorCode.INVALID_CONFIG, f"unknown mock directive(s): {', '.join(sorted(unknown))}"
        )
    if "fail" in directives and directives["fail"] not in _FAILURES:
        raise JudgeError(
            LLMErrorCode.INVALID_CONFIG, f"unknown mock failure {directives['fail']!r}"
        )
    if "answer" in directives and directives["answer"] not in {*_ANSWERS, "refusal"}:
        raise JudgeError(
            LLMErrorCode.INVALID_CONFIG, f"unknown mock answer {directives['answer']!r}"
        )
    return directives


class MockJudge:
    """See the module docstring. Keeps per-request call counts (for ``fail_times``) in memory."""

    def __init__(self, latency_ms: float = 0.0, error_rate: float = 0.0, seed: int = 0) -> None:
        self._latency_ms = latency_ms
        self._error_rate = error_rate
        self._rng = random.Random(seed)
        self._calls: Counter[str] = Counter()

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """Answer per the directives; raises the JudgeError a directive asks for."""
        d = parse_directives(call.model)
        try:
            latency = float(d.get("latency_ms", self._latency_ms))
            fail_times = int(d["fail_times"]) if "fail_times" in d else None
            retry_after = float(d["retry_after"]) if "retry_after" in d else None
        except ValueError as exc:
            raise JudgeError(LLMErrorCode.INVALID_CONFIG, f"bad mock directive: {exc}") from exc
        key = str(call.correlation_id)
        self._calls[key] += 1
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        failure = d.get("fail")
        if failure and (fail_times is None or self._calls[key] <= fail_times):
            code, retryable, fault = _FAILURES[failure]
            raise JudgeError(
                code,
                f"mock failure {failure!r} (call {self._calls[key]})",
                retryable=retryable,
                provider_fault=fault,
                retry_after=retry_after,
            )
        if not d and self._error_rate and self._rng.random() < self._error_rate:
            raise JudgeError(
                LLMErrorCode.PROVIDER_API_ERROR,
                "mock random failure",
                retryable=True,
                provider_fault=True,
            )
        answer = d.get("answer")
        if answer == "refusal":
            raise JudgeError(
                LLMErrorCode.INVALID_RESPONSE, "the model refused to compare these essays"
            )
        if answer:
            parse_answer_text(_ANSWERS[answer])  # raises the matching JudgeError
        choice = d.get("winner")
        if choice is None:
            a_wins = (len(call.essay_a), call.essay_b) >= (len(call.essay_b), call.essay_a)
        else:
            a_wins = choice == "a"
        return JudgeAnswer(
            winner=EssayComparisonWinner.ESSAY_A if a_wins else EssayComparisonWinner.ESSAY_B,
            justification="Mock verdict.",
            confidence=3.0,
            prompt_tokens=len(call.user_message) // 4,
            completion_tokens=20,
        )

    async def aclose(self) -> None:
        """Nothing to release."""
