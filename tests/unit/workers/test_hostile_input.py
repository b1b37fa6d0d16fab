"""The pure guards against hostile input (issue 11): callback topic policy, metadata and body
size bounds, the CONTENT_TOO_LONG replacement of an oversized result, and what a poison entry
still tells."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Request

from cj_workers.api.body_limit import BodySizeLimit
from cj_workers.api.validation import check_request, metadata_bytes
from cj_workers.callback_topics import CallbackTopicPolicy, is_dead_letter_topic
from cj_workers.manifest import ModelManifest
from cj_workers.results import envelope, poison_result, too_large_result, trim_metadata
from cj_workers.settings import ProviderApiSettings, WorkerSettings
from cj_workers.worker.poison import poison_target
from common_core import (
    EssayComparisonWinner,
    LLMComparisonRequest,
    LLMComparisonResultV1,
    LLMConfigOverrides,
    LLMErrorCode,
    LLMProviderType,
    ProcessingEvent,
)

RESULT_TOPIC = ProcessingEvent.LLM_COMPARISON_RESULT.topic_name()
COMPLETED_TOPIC = ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name()


def default_policy() -> CallbackTopicPolicy:
    s = ProviderApiSettings()
    return CallbackTopicPolicy.build(
        s.callback_topics, s.callback_topic_pattern, s.refused_callback_topics
    )


def test_by_default_only_the_comparison_result_topic_is_a_callback_topic() -> None:
    policy = default_policy()
    assert policy.problem(RESULT_TOPIC) is None
    for topic in (COMPLETED_TOPIC, f"{RESULT_TOPIC}.dlq", "huleedu.anything.v1"):
        problem = policy.problem(topic)
        assert problem is not None and topic in problem


def test_completion_and_dead_letter_topics_are_refused_even_when_listed_or_matched() -> None:
    policy = CallbackTopicPolicy.build(
        [COMPLETED_TOPIC, "t.callbacks.dlq", "t.callbacks"], r"^t\..+", ["t.done"]
    )
    assert policy.problem("t.callbacks") is None
    assert policy.problem("t.other") is None  # the pattern
    assert "completion topic" in str(policy.problem(COMPLETED_TOPIC))
    assert "dead-letter" in str(policy.problem("t.callbacks.dlq"))
    assert "refused" in str(policy.problem("t.done"))


@pytest.mark.parametrize(
    ("topic", "dead"),
    [
        ("huleedu.llm_provider.comparison_result.v1.dlq", True),
        ("orders-DLT", True),
        ("x.dead-letter.v1", True),
        ("x_deadletters", True),
        ("x.dlqueue", False),
        ("huleedu.llm_provider.comparison_result.v1", False),
        ("dead.end", False),
    ],
)
def test_dead_letter_topic_names(topic: str, dead: bool) -> None:
    assert is_dead_letter_topic(topic) is dead


def request(**kw: object) -> LLMComparisonRequest:
    body: dict[str, object] = {
        "user_prompt": "p",
        "essay_a": "a",
        "essay_b": "b",
        "callback_topic": RESULT_TOPIC,
        **kw,
    }
    return LLMComparisonRequest.model_validate(body)


def check(req: LLMComparisonRequest, max_metadata_bytes: int = 64 * 1024) -> object:
    return check_request(
        req,
        topic_policy=default_policy(),
        max_essay_chars=100,
        max_prompt_chars=100,
        max_metadata_bytes=max_metadata_bytes,
        manifest=ModelManifest.load(None),
        default_provider=None,
        enabled_providers=list(LLMProviderType),
        operation="submit_comparison",
    )


def test_metadata_over_the_bound_is_content_too_long_naming_size_and_limit() -> None:
    assert ProviderApiSettings().max_metadata_bytes == 64 * 1024
    req = request(metadata={"pad": "x" * 1_100_000})
    detail = check(req)
    size = metadata_bytes(req.metadata)
    assert size == len(json.dumps({"pad": "x" * 1_100_000}, separators=(",", ":")))
    assert getattr(detail, "error_code", None) is LLMErrorCode.CONTENT_TOO_LONG
    assert getattr(detail, "details", None) == {
        "field": "metadata",
        "length": size,
        "limit": 64 * 1024,
    }
    assert str(size) in str(getattr(detail, "message", ""))
    assert check(request(metadata={"pad": "x" * 100}), max_metadata_bytes=200) is None


async def test_bodies_over_the_limit_never_reach_the_route() -> None:
    reached: list[int] = []
    inner = FastAPI()

    @inner.post("/api/v1/comparisons")
    async def route(r: Request) -> dict[str, int]:
        reached.append(len(await r.body()))
        return {"ok": 1}

    refusals: list[None] = []
    app = BodySizeLimit(inner, limit=1000, on_refusal=lambda: refusals.append(None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        declared = await client.post("/api/v1/comparisons", content=b"x" * 1001)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * 300

        chunked = await client.post("/api/v1/comparisons", content=chunks())
        fits = await client.post("/api/v1/comparisons", content=b"z" * 1000)
    assert declared.status_code == 413
    assert declared.json()["error_code"] == LLMErrorCode.CONTENT_TOO_LONG.value
    assert declared.json()["details"] == {"field": "body", "length": 1001, "limit": 1000}
    assert "1001 bytes" in declared.json()["message"]
    assert "1000" in declared.json()["message"]
    assert chunked.status_code == 413
    assert chunked.json()["operation"] == "submit_comparisons"
    assert fits.status_code == 200
    assert reached == [1000]
    assert len(refusals) == 2


def success(metadata: dict[str, object]) -> LLMComparisonResultV1:
    now = datetime.now(UTC)
    return LLMComparisonResultV1(
        request_id="q1",
        correlation_id=uuid.uuid4(),
        winner=EssayComparisonWinner.ESSAY_A,
        justification="A argues better.",
        confidence=4.0,
        provider=LLMProviderType.MOCK,
        model="mock",
        response_time_ms=3,
        cost_estimate=0.5,
        requested_at=now,
        completed_at=now,
        request_metadata=metadata,
    )


def test_trim_keeps_the_small_routing_keys() -> None:
    meta = {"batch_id": "b1", "pair_id": 7, "pad": "x" * 5000, "note": "y" * 300}
    kept, dropped = trim_metadata(meta, 400)
    assert kept == {"batch_id": "b1", "pair_id": 7, "note": "y" * 300}
    assert dropped == ["pad"]
    assert trim_metadata(meta, 10**6) == (meta, [])


def test_an_oversized_result_becomes_content_too_long_for_the_same_correlation_id() -> None:
    big = success({"batch_id": "b1", "pair_id": 7, "pad": "x" * 50_000})
    size = len(envelope(big, "svc"))
    replaced = too_large_result(
        big, event_bytes=size, limit=20_000, metadata_budget=1000, service="svc"
    )
    assert replaced.correlation_id == big.correlation_id
    assert replaced.request_id == big.request_id
    assert replaced.cost_estimate == big.cost_estimate
    detail = replaced.error_detail
    assert detail is not None and detail.error_code is LLMErrorCode.CONTENT_TOO_LONG
    assert not detail.retryable
    assert detail.details["event_bytes"] == size
    assert detail.details["limit"] == 20_000
    assert detail.details["original_status"] == "success"
    assert detail.details["dropped_metadata_keys"] == ["pad"]
    assert replaced.request_metadata == {"batch_id": "b1", "pair_id": 7}
    assert len(envelope(replaced, "svc")) < 20_000


def test_a_poison_entry_names_its_correlation_id_when_readable_enough() -> None:
    cid = uuid.uuid4()
    payload = json.dumps(
        {
            "correlation_id": str(cid),
            "callback_topic": "t.callbacks",
            "queue_id": "q9",
            "request_data": {
                "metadata": {"batch_id": "b"},
                "llm_config_overrides": {"provider_override": "mock", "model_override": "m"},
                "essay_a": 5,
            },
        }
    ).encode()
    models = WorkerSettings().default_models
    target = poison_target(payload, LLMProviderType.OFFLINE, models)
    assert target is not None
    topic, fields = target
    assert topic == "t.callbacks"
    result = poison_result(**fields, deliveries=6, limit=5, service="svc")
    assert result.correlation_id == cid
    assert result.request_id == "q9"
    assert (result.provider, result.model) == (LLMProviderType.MOCK, "m")
    assert result.request_metadata == {"batch_id": "b"}
    detail = result.error_detail
    assert detail is not None and detail.error_code is LLMErrorCode.INTERNAL_ERROR
    assert detail.retryable is False
    assert detail.details["deliveries"] == 6

    for bad in (
        b"not json",
        b"[1]",
        json.dumps({"correlation_id": str(cid)}).encode(),
        json.dumps({"correlation_id": "nope", "callback_topic": "t.x"}).encode(),
        json.dumps({"correlation_id": str(cid), "callback_topic": COMPLETED_TOPIC}).encode(),
        json.dumps({"correlation_id": str(cid), "callback_topic": "t.x.dlq"}).encode(),
    ):
        assert poison_target(bad, LLMProviderType.OFFLINE, models) is None, bad


@pytest.mark.parametrize("model", ["m" * 201, "bad\x00model", "", 7])
def test_a_poison_entry_with_an_unstorable_model_or_id_still_gets_an_error_event(
    model: object,
) -> None:
    cid = uuid.uuid4()
    payload = json.dumps(
        {
            "correlation_id": str(cid),
            "callback_topic": "t.callbacks",
            "queue_id": "q" * 129,
            "request_data": {
                "llm_config_overrides": {"provider_override": "mock", "model_override": model}
            },
        }
    ).encode()
    models = WorkerSettings().default_models
    target = poison_target(payload, LLMProviderType.OFFLINE, models)
    assert target is not None
    _, fields = target
    # The result contract bounds model and request_id; the defaults stand in for them.
    result = poison_result(**fields, deliveries=6, limit=5, service="svc")
    assert result.model == models.get(LLMProviderType.MOCK, "mock")
    assert result.request_id == str(cid)


def test_a_model_override_with_control_characters_is_refused_at_the_api_edge() -> None:
    with pytest.raises(ValueError, match="control character"):
        LLMConfigOverrides(model_override="gpt\x00")
