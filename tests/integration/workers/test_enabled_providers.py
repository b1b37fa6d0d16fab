"""The test judges are off unless enabled (issue 11), on the real API and worker processes.

The processes run with their own default (CJ_ENABLED_PROVIDERS unset): the API refuses a
request naming `mock` or `simulated` with 400 INVALID_CONFIG naming the setting and queues
nothing; a worker given such an entry anyway (queued by an API configured otherwise) answers
it with an INVALID_CONFIG error event instead of judging; normal requests still complete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from cj_workers.keys import RedisKeys
from common_core import LLMComparisonRequest, LLMErrorCode, QueuedRequest
from tests.integration.workers.comparisons import collect, request
from tests.support.metrics import metric
from tests.support.stack import Stack

REFUSAL = (
    "is not enabled: CJ_ENABLED_PROVIDERS is [anthropic, openai, openai_compatible, offline] "
    "(mock and simulated are test judges, off unless listed there; chart value "
    "enabledProviders)"
)


@pytest.fixture
def default_stack(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """The test's stack, but the processes keep their own CJ_ENABLED_PROVIDERS default."""
    own = Stack(dataclasses.replace(stack.config, enabled_providers=None), tmp_path / "own")
    yield own
    own.stop()


async def test_the_api_refuses_test_judges_by_default_and_a_worker_refuses_them_too(
    default_stack: Stack, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CJ_ENABLED_PROVIDERS", raising=False)
    stack = default_stack
    api = stack.start_api().url
    topic = stack.config.callback_topic
    queue = stack.queue(redis)
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        for judge in ("mock", "simulated"):
            body = request(topic, judge, llm_config_overrides={"provider_override": judge})
            refused = await client.post("/api/v1/comparison", json=body)
            assert refused.status_code == 400, refused.text
            detail = refused.json()
            assert detail["error_code"] == LLMErrorCode.INVALID_CONFIG.value
            assert detail["message"] == f"judge {judge!r} {REFUSAL}"
            assert detail["details"]["provider"] == judge
        bulk = await client.post(
            "/api/v1/comparisons",
            json={
                "requests": [
                    request(topic, "bulk-mock", llm_config_overrides={"provider_override": "mock"}),
                    request(topic, "normal"),  # the workers' default judge: offline
                ]
            },
        )
        assert bulk.status_code == 207, bulk.text
        first, second = bulk.json()["outcomes"]
        assert first["error"]["error_code"] == LLMErrorCode.INVALID_CONFIG.value
        assert "CJ_ENABLED_PROVIDERS" in first["error"]["message"]
        assert second["queued"] is not None
    assert sum((await queue.depth()).values()) == 1  # only the normal request

    # An entry naming mock that reached the stream anyway (an API configured otherwise).
    await queue.ensure_group()
    sneaked = QueuedRequest.from_request(
        LLMComparisonRequest.model_validate(
            request(topic, "sneaked", llm_config_overrides={"provider_override": "mock"})
        ),
        3600,
    )
    await redis.xadd(
        RedisKeys(stack.config.redis_prefix).streams[1], {"r": sneaked.model_dump_json()}
    )
    worker = stack.start_worker("w1").url
    events = {
        str(e.data.request_metadata["case"]): e.data for _, e in await collect(stack, 2, settle=1.0)
    }
    assert sorted(events) == ["normal", "sneaked"]
    assert events["normal"].is_success
    refused_event = events["sneaked"]
    assert refused_event.correlation_id == sneaked.correlation_id
    assert refused_event.error_detail is not None
    assert refused_event.error_detail.error_code is LLMErrorCode.INVALID_CONFIG
    assert refused_event.error_detail.message == f"judge 'mock' {REFUSAL}"
    assert refused_event.error_detail.retryable is False
    assert (
        metric(worker, "cj_provider_requests_total", provider="mock", status="LLM_INVALID_CONFIG")
        == 1
    )
