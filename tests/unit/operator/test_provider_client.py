"""The provider API client: outcomes, refusals, errors and the circuit breaker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest

from cj_operator.provider_client import (
    HttpProviderApi,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from cj_plumbing.breaker import CircuitBreaker
from common_core import LLMComparisonRequest


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _request() -> LLMComparisonRequest:
    return LLMComparisonRequest(
        user_prompt="p", essay_a="a", essay_b="b", callback_topic="huleedu.x.v1"
    )


def _queued(cid: str, index: int) -> dict[str, object]:
    return {
        "index": index,
        "correlation_id": cid,
        "queued": {
            "queue_id": str(uuid4()),
            "correlation_id": cid,
            "queued_at": datetime.now(UTC).isoformat(),
            "estimated_wait_seconds": 0.0,
            "priority": "normal",
        },
    }


def _refused(cid: str, index: int, code: str) -> dict[str, object]:
    return {
        "index": index,
        "correlation_id": cid,
        "error": {"error_code": code, "message": "no", "service": "api", "operation": "submit"},
    }


def _client(
    handler: httpx.MockTransport, breaker: CircuitBreaker | None = None, token: str | None = None
) -> HttpProviderApi:
    return HttpProviderApi(
        "http://api",
        token=token,
        timeout_seconds=1.0,
        breaker=breaker or CircuitBreaker(2, 30.0, FakeClock()),
        transport=handler,
    )


async def test_bulk_outcomes_and_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        items = json.loads(request.content)["requests"]
        outcomes = [
            _queued(items[0]["correlation_id"], 0),
            _refused(items[1]["correlation_id"], 1, "LLM_CONTENT_TOO_LONG"),
        ]
        return httpx.Response(207, json={"outcomes": outcomes})

    client = _client(httpx.MockTransport(handle), token="t0k")
    answer = await client.submit([_request(), _request()])
    assert answer.accepted == 1
    assert answer.outcomes[1].error is not None
    assert seen[0].url.path == "/api/v1/comparisons"
    assert seen[0].headers["authorization"] == "Bearer t0k"
    assert json.loads(seen[0].content)["requests"][0]["callback_topic"] == "huleedu.x.v1"
    await client.close()


async def test_all_refused_with_one_status_still_gives_outcomes() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        cid = json.loads(request.content)["requests"][0]["correlation_id"]
        return httpx.Response(503, json={"outcomes": [_refused(cid, 0, "LLM_QUEUE_FULL")]})

    answer = await _client(httpx.MockTransport(handle)).submit([_request()])
    assert answer.outcomes[0].error is not None
    assert answer.outcomes[0].error.error_code.value == "LLM_QUEUE_FULL"


async def test_whole_request_refusal() -> None:
    def handle(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422,
            json={
                "error_code": "LLM_INVALID_PROMPT",
                "message": "bad request",
                "service": "api",
                "operation": "submit",
            },
        )

    with pytest.raises(ProviderRejectedError, match="422 LLM_INVALID_PROMPT: bad request"):
        await _client(httpx.MockTransport(handle)).submit([_request()])


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_defer_instead_of_failing_the_pairs(status: int) -> None:
    def handle(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={
                "error_code": "LLM_INVALID_CONFIG",
                "message": "bad token",
                "service": "api",
                "operation": "submit",
            },
        )

    with pytest.raises(ProviderUnavailableError, match=f"credentials \\({status}\\): bad token"):
        await _client(httpx.MockTransport(handle)).submit([_request()])


async def test_faults_open_the_circuit_then_one_trial() -> None:
    clock = FakeClock()
    calls = 0

    def handle(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(502, text="bad gateway", headers={"Retry-After": "7"})

    breaker = CircuitBreaker(2, 30.0, clock)
    client = _client(httpx.MockTransport(handle), breaker)
    with pytest.raises(ProviderUnavailableError) as first:
        await client.submit([_request()])
    assert first.value.retry_after == 7.0
    with pytest.raises(ProviderUnavailableError):
        await client.submit([_request()])
    assert breaker.is_open and calls == 2
    with pytest.raises(ProviderUnavailableError, match="circuit is open"):
        await client.submit([_request()])
    assert calls == 2
    clock.now += 31
    with pytest.raises(ProviderUnavailableError, match="502"):
        await client.submit([_request()])
    assert calls == 3
    with pytest.raises(ProviderUnavailableError, match="circuit is open"):
        await client.cancel("uid")


async def test_connection_errors_are_unavailable() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailableError, match="unreachable"):
        await _client(httpx.MockTransport(handle)).cancel("uid")


async def test_cancel() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/batches/uid-1/cancel"
        return httpx.Response(
            200,
            json={
                "batch_id": "uid-1",
                "cancelled_at": datetime.now(UTC).isoformat(),
                "ttl_seconds": 60,
            },
        )

    answer = await _client(httpx.MockTransport(handle)).cancel("uid-1")
    assert answer.batch_id == "uid-1"


async def test_models_are_read_with_the_token_and_bad_answers_are_unavailable() -> None:
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(
            200,
            json=[
                {
                    "provider": "anthropic",
                    "model": "claude-haiku-4-5",
                    "input_usd_per_mtok": 1.0,
                    "output_usd_per_mtok": 5.0,
                    "description": "Haiku",
                }
            ],
        ),
        httpx.Response(200, json={"models": []}),
        httpx.Response(500, text="boom"),
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    client = _client(httpx.MockTransport(handle), token="t0k3n")
    models = await client.models()
    assert [(m.model, m.input_usd_per_mtok, m.output_usd_per_mtok) for m in models] == [
        ("claude-haiku-4-5", 1.0, 5.0)
    ]
    assert seen[0].url.path == "/api/v1/models"
    assert seen[0].headers["authorization"] == "Bearer t0k3n"
    with pytest.raises(ProviderUnavailableError, match="not a list of models"):
        await client.models()
    with pytest.raises(ProviderUnavailableError, match="answered 500 for /api/v1/models"):
        await client.models()
    # A price lookup never opens the circuit that guards submissions.
    assert client.breaker.try_acquire() is None
