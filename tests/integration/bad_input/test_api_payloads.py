"""Bad-input suite, explicit hostile payloads for the real provider API (real Redis and Kafka).

Each case is refused with an ErrorDetail whose message names what is wrong, nothing is queued
for it, and a normal request right after it is queued. The refusals the older tests make
(missing, blank, unlisted or absent callback topics, 1.1 MB of metadata, oversized and chunked
bodies, a too-long essay, an unknown OpenAI model, temperature 9, 401) are not repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from common_core import LLMErrorCode
from tests.integration.bad_input.queue_view import queued
from tests.integration.workers.comparisons import request
from tests.support.metrics import metric
from tests.support.stack import Stack

TOPIC = "<topic>"
"""Stands for the module's callback topic in a case's body."""


def _deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@dataclass(frozen=True)
class Payload:
    name: str
    status: int
    code: LLMErrorCode
    says: tuple[str, ...]
    """Substrings of the message."""
    body: dict[str, Any] | None = None
    """JSON body (TOPIC replaced), or None to send `raw`."""
    raw: bytes | str = b""
    path: str = "/api/v1/comparison"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


def _metadata_of(size: int) -> dict[str, str]:
    """1000 small keys plus a pad: exactly `size` bytes of compact JSON."""
    keys = {f"k{i:04d}": "v" * 52 for i in range(1000)}
    base = len(json.dumps({**keys, "pad": ""}, separators=(",", ":")))
    return {**keys, "pad": "x" * (size - base)}


def _body(**changes: Any) -> dict[str, Any]:
    return request(TOPIC, "hostile", **changes)


def _single_with(fragment: str) -> str:
    """A single request whose metadata is the raw JSON `fragment`."""
    return (
        '{"user_prompt": "p", "essay_a": "a", "essay_b": "b", '
        f'"callback_topic": "{TOPIC}", "metadata": {{"x": {fragment}}}}}'
    )


PAYLOADS: list[Payload] = [
    Payload(
        "JSON nested 100,000 deep",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("the request body is not valid JSON",),
        raw=_single_with(_deep(100_000)),
    ),
    Payload(
        "bulk JSON nested 100,000 deep",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("nested too deeply",),
        raw=f'{{"requests": [{_single_with(_deep(100_000))}]}}',
        path="/api/v1/comparisons",
    ),
    Payload(
        "metadata nested 40 deep",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("metadata is nested 41 levels deep; at most 32",),
        raw=_single_with(_deep(40)),
    ),
    Payload(
        "NaN in metadata",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("metadata holds NaN or an infinity",),
        raw=_single_with("NaN"),
    ),
    Payload(
        "body not UTF-8",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("the request body is not valid JSON",),
        raw=b'{"user_prompt": "\xff\xfe"}',
    ),
    Payload(
        "lone surrogate in the prompt",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("user_prompt", "unicode"),
        raw=(
            '{"user_prompt": "\\ud800", "essay_a": "a", "essay_b": "b", '
            f'"callback_topic": "{TOPIC}"}}'
        ),
    ),
    Payload(
        "wrong types",
        400,
        LLMErrorCode.INVALID_CONFIG,
        ("essay_a: Input should be a valid string", "temperature_override"),
        body=_body(essay_a=5, llm_config_overrides={"temperature_override": "hot"}),
    ),
    Payload(
        "unknown judge",
        400,
        LLMErrorCode.INVALID_CONFIG,
        ("llm_config_overrides.provider_override: Input should be 'anthropic'",),
        body=_body(llm_config_overrides={"provider_override": "gpt-9"}),
    ),
    Payload(
        "escape in model override",
        400,
        LLMErrorCode.INVALID_CONFIG,
        ("llm_config_overrides.model_override", "control character '\\x1b'"),
        body=_body(llm_config_overrides={"model_override": "gpt\x1b[0m"}),
    ),
    Payload(
        "max tokens above 100000",
        400,
        LLMErrorCode.INVALID_CONFIG,
        ("max_tokens_override: Input should be less than or equal to 100000",),
        body=_body(llm_config_overrides={"max_tokens_override": 100_001}),
    ),
    Payload(
        "unknown priority",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("priority: Input should be",),
        body=_body(priority="urgent"),
    ),
    Payload(
        "correlation id not a UUID",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("correlation_id: Input should be a valid UUID",),
        body=_body(correlation_id="pair-7"),
    ),
    Payload(
        "unknown field",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("api_key: Extra inputs are not permitted",),
        body=_body(api_key="sk-1"),
    ),
    Payload(
        "metadata 1 byte over 64 KiB in many keys",
        413,
        LLMErrorCode.CONTENT_TOO_LONG,
        ("metadata has 65537 bytes of JSON; at most 65536",),
        body=_body(metadata=_metadata_of(64 * 1024 + 1)),
    ),
    Payload(
        "bulk of 1001 requests",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ("with 1 to 1000 items",),
        body={"requests": [_body()] * 1001},
        path="/api/v1/comparisons",
    ),
    Payload(
        "bulk body a list",
        400,
        LLMErrorCode.INVALID_PROMPT,
        ('body must be {"requests": [...]}',),
        body={"requests": "all of them"},
        path="/api/v1/comparisons",
    ),
    Payload(
        "unknown route",
        404,
        LLMErrorCode.INVALID_PROMPT,
        ("GET /api/v1/results", "Not Found"),
        method="GET",
        path="/api/v1/results",
    ),
    Payload(
        "wrong method",
        405,
        LLMErrorCode.INVALID_PROMPT,
        ("DELETE /api/v1/comparison", "Method Not Allowed"),
        method="DELETE",
    ),
]


def _fill(value: Any, topic: str) -> Any:
    if isinstance(value, str):
        return value.replace(TOPIC, topic)
    if isinstance(value, dict):
        return {k: _fill(v, topic) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, topic) for v in value]
    return value


def _content(case: Payload, topic: str) -> bytes:
    if case.body is not None:
        return json.dumps(_fill(case.body, topic)).encode()
    raw = case.raw.encode() if isinstance(case.raw, str) else case.raw
    return raw.replace(TOPIC.encode(), topic.encode())


async def test_metadata_of_exactly_64_kib_is_accepted(
    api_stack: Stack, redis_client: aioredis.Redis
) -> None:
    """The other side of the 413 case, one byte over: the limit itself is what refuses it."""
    before = await queued(api_stack, redis_client)
    body = request(api_stack.config.callback_topic, "edge", metadata=_metadata_of(64 * 1024))
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as client:
        response = await client.post("/api/v1/comparison", json=body)
    assert response.status_code == 202, response.text[:500]
    assert await queued(api_stack, redis_client) == before + 1


@pytest.mark.parametrize("case", PAYLOADS, ids=lambda c: c.name)
async def test_a_hostile_payload_is_refused_saying_why_and_queues_nothing(
    api_stack: Stack, redis_client: aioredis.Redis, case: Payload
) -> None:
    topic = api_stack.config.callback_topic
    before = await queued(api_stack, redis_client)
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as client:
        response = await client.request(
            case.method, case.path, content=_content(case, topic), headers=case.headers
        )
        assert response.status_code == case.status, response.text[:1000]
        detail = response.json()
        assert detail["error_code"] == case.code.value, detail
        for needle in case.says:
            assert needle in detail["message"], detail["message"]
        assert await queued(api_stack, redis_client) == before

        normal = await client.post("/api/v1/comparison", json=request(topic, "normal"))
        assert normal.status_code == 202, normal.text
    assert await queued(api_stack, redis_client) == before + 1


async def test_the_counters_agree_with_the_queue(
    api_stack: Stack, redis_client: aioredis.Redis
) -> None:
    counted = metric(api_stack.api_url, "cj_provider_api_submissions_total", outcome="queued")
    assert counted == await queued(api_stack, redis_client) == len(PAYLOADS) + 1
