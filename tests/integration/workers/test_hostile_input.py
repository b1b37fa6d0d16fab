"""No single message stops the provider side (issue 11), on the real Redis and Kafka.

Each test sends the hostile input, then shows a normal request still completes and nothing is
left queued or pending: oversized metadata and bodies are refused at the API, callback topics
outside the allowlist (the completion topic, dead-letter topics) are refused, an oversized
result becomes a CONTENT_TOO_LONG error event, and an entry delivered too often is
dead-lettered with an INTERNAL_ERROR event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import redis.asyncio as aioredis

from cj_workers.keys import RedisKeys
from common_core import LLMComparisonRequest, LLMErrorCode, ProcessingEvent, QueuedRequest
from tests.integration.workers.comparisons import Event, collect, request
from tests.support.isolation import TopicFactory
from tests.support.metrics import metric
from tests.support.polling import wait_for
from tests.support.stack import Stack

OFFLINE = {"provider_override": "offline"}
COMPLETED_TOPIC = ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name()
RESULT_DLQ = ProcessingEvent.LLM_COMPARISON_RESULT.topic_name() + ".dlq"


def by_case(events: list[tuple[bytes | None, Event]]) -> dict[str, Event]:
    return {str(e.data.request_metadata.get("case")): e for _, e in events}


async def assert_settled(stack: Stack, redis: aioredis.Redis) -> None:
    """Nothing queued, nothing pending: no entry is stuck."""
    queue = stack.queue(redis)

    async def settled() -> bool:
        return await queue.pending_count() == 0 and sum((await queue.depth()).values()) == 0

    await wait_for(settled, 20, "empty streams, nothing pending")


async def test_oversized_metadata_and_bodies_are_refused_and_nothing_is_queued(
    stack: Stack, redis: aioredis.Redis
) -> None:
    limit = 2 * 1024 * 1024
    api = stack.start_api(CJ_API_MAX_BODY_BYTES=str(limit)).url
    topic = stack.config.callback_topic
    queue = stack.queue(redis)
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        # The request of issue 11: 1.1 MB of metadata padding.
        padded = request(topic, "pad", metadata={"case": "pad", "pad": "x" * 1_100_000})
        refused = await client.post("/api/v1/comparison", json=padded)
        assert refused.status_code == 413, refused.text
        detail = refused.json()
        assert detail["error_code"] == LLMErrorCode.CONTENT_TOO_LONG.value
        assert detail["details"]["field"] == "metadata"
        assert detail["details"]["limit"] == 64 * 1024
        assert str(detail["details"]["length"]) in detail["message"]
        in_bulk = await client.post(
            "/api/v1/comparisons", json={"requests": [padded, request(topic, "ok-in-bulk")]}
        )
        assert in_bulk.status_code == 207, in_bulk.text
        outcome = in_bulk.json()["outcomes"][0]["error"]
        assert outcome["error_code"] == LLMErrorCode.CONTENT_TOO_LONG.value

        # Bodies over the limit: a bulk request with a Content-Length, one request chunked.
        essay = "Long essay. " * 3500  # 42,000 characters, under the essay limit
        bulk = {"requests": [request(topic, f"b{i}", essay_a=essay) for i in range(60)]}
        big = await client.post("/api/v1/comparisons", json=bulk)
        assert big.status_code == 413, big.text
        assert big.json()["details"]["field"] == "body"
        assert big.json()["details"]["limit"] == limit
        assert big.json()["details"]["length"] > limit
        assert f"at most {limit}" in big.json()["message"]

        data = json.dumps(request(topic, "c", metadata={"pad": "y" * (3 * 1024 * 1024)}))

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 65536):
                yield data[i : i + 65536].encode()

        chunked = await client.post(
            "/api/v1/comparison", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["details"]["field"] == "body"

    assert sum((await queue.depth()).values()) == 1  # only "ok-in-bulk"
    assert metric(api, "cj_provider_api_submissions_total", outcome="LLM_CONTENT_TOO_LONG") == 4

    stack.start_worker("w1")
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        normal = await client.post("/api/v1/comparison", json=request(topic, "normal"))
        assert normal.status_code == 202, normal.text
    events = by_case(await collect(stack, 2, settle=1.0))
    assert sorted(events) == ["normal", "ok-in-bulk"]
    assert all(e.data.is_success for e in events.values())
    await assert_settled(stack, redis)


async def test_only_allowlisted_callback_topics_and_never_completion_or_dead_letter_topics(
    stack: Stack, redis: aioredis.Redis, kafka_topic: TopicFactory
) -> None:
    other = await kafka_topic("other")  # exists on the broker, but is not listed
    # No pattern: only the allowlist (CJ_API_CALLBACK_TOPICS = the stack's callback topic).
    api = stack.start_api(CJ_API_CALLBACK_TOPIC_PATTERN="").url
    topic = stack.config.callback_topic
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        for hostile, says in (
            (COMPLETED_TOPIC, "completion topic"),
            (RESULT_DLQ, "dead-letter"),
            (f"{topic}.dlq", "dead-letter"),
            (other, "not allowed"),
        ):
            refused = await client.post("/api/v1/comparison", json=request(hostile, "bad"))
            assert refused.status_code == 400, (hostile, refused.text)
            assert refused.json()["error_code"] == LLMErrorCode.INVALID_CALLBACK_TOPIC.value
            assert hostile in refused.json()["message"] and says in refused.json()["message"]
        bulk = await client.post(
            "/api/v1/comparisons",
            json={"requests": [request(COMPLETED_TOPIC, "bad"), request(topic, "normal")]},
        )
        assert bulk.status_code == 207, bulk.text
        first = bulk.json()["outcomes"][0]["error"]
        assert first["error_code"] == LLMErrorCode.INVALID_CALLBACK_TOPIC.value
    assert sum((await stack.queue(redis).depth()).values()) == 1

    stack.start_worker("w1")
    events = await collect(stack, 1, settle=1.0)
    assert [e.data.request_metadata["case"] for _, e in events] == ["normal"]
    assert events[0][1].data.is_success
    await assert_settled(stack, redis)


async def test_a_result_over_the_event_limit_becomes_content_too_long(
    stack: Stack, redis: aioredis.Redis
) -> None:
    api = stack.start_api().url
    topic = stack.config.callback_topic
    cid = uuid.uuid4()
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        big = request(
            topic,
            "big",
            llm_config_overrides=OFFLINE,
            metadata={"case": "big", "batch_id": "b-1", "pad": "x" * 30_000},
            correlation_id=str(cid),
        )
        for body in (big, request(topic, "normal", llm_config_overrides=OFFLINE)):
            response = await client.post("/api/v1/comparison", json=body)
            assert response.status_code == 202, response.text
    worker = stack.start_worker("w1", CJ_WORKER_MAX_EVENT_BYTES="20000").url
    events = by_case(await collect(stack, 2, settle=1.0))
    assert sorted(events) == ["big", "normal"]
    assert events["normal"].data.is_success
    failed = events["big"].data
    assert failed.error_detail is not None
    assert failed.error_detail.error_code is LLMErrorCode.CONTENT_TOO_LONG
    assert failed.error_detail.retryable is False
    assert failed.error_detail.details["limit"] == 20_000
    assert failed.error_detail.details["event_bytes"] > 30_000
    assert failed.error_detail.details["dropped_metadata_keys"] == ["pad"]
    assert failed.error_detail.details["original_status"] == "success"
    assert failed.request_metadata == {"case": "big", "batch_id": "b-1"}
    assert failed.correlation_id == cid
    assert events["big"].correlation_id == cid
    assert metric(worker, "cj_provider_callback_events_published_total", status="error") == 1
    assert metric(worker, "cj_provider_callback_publish_failures_total") == 0
    await assert_settled(stack, redis)


async def test_a_message_kafka_refuses_as_too_large_gives_content_too_long_not_a_stuck_entry(
    stack: Stack, redis: aioredis.Redis
) -> None:
    # The path of issue 11: limits above Kafka's, so the producer itself refuses the event
    # (MessageSizeTooLargeError, max.request.size 1 MiB) instead of it being caught earlier.
    api = stack.start_api(
        CJ_API_MAX_METADATA_BYTES=str(2 * 1024 * 1024),
        CJ_API_MAX_BODY_BYTES=str(4 * 1024 * 1024),
    ).url
    topic = stack.config.callback_topic
    cid = uuid.uuid4()
    padded = request(
        topic,
        "pad",
        metadata={"case": "pad", "batch_id": "b-2", "pad": "x" * 1_100_000},
        correlation_id=str(cid),
    )
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for body in (padded, request(topic, "normal")):
            response = await client.post("/api/v1/comparison", json=body)
            assert response.status_code == 202, response.text
    worker = stack.start_worker(
        "w1", CJ_WORKER_CONCURRENCY="1", CJ_WORKER_MAX_EVENT_BYTES=str(4 * 1024 * 1024)
    ).url
    events = by_case(await collect(stack, 2, settle=1.0))
    assert sorted(events) == ["normal", "pad"]
    assert events["normal"].data.is_success
    failed = events["pad"].data
    assert failed.correlation_id == cid
    assert failed.error_detail is not None
    assert failed.error_detail.error_code is LLMErrorCode.CONTENT_TOO_LONG
    assert failed.error_detail.details["refused_by_broker"] is True
    assert failed.error_detail.details["dropped_metadata_keys"] == ["pad"]
    assert failed.request_metadata == {"case": "pad", "batch_id": "b-2"}
    assert metric(worker, "cj_provider_callback_publish_failures_total") == 1
    await assert_settled(stack, redis)


async def _deliver_to_dead_workers(
    redis: aioredis.Redis, stream: str, group: str, times: int
) -> list[str]:
    """Deliver every new entry of `stream` `times` times to consumers that never finish (one
    XREADGROUP, then XCLAIMs, each counted by Redis as a delivery): the history of an entry
    whose workers all died on it."""
    reply: Any = await redis.xreadgroup(group, "dead-0", {stream: ">"}, count=100)
    ids = [i.decode() for _, messages in reply for i, _ in messages]
    for n in range(1, times):
        await redis.xclaim(stream, group, f"dead-{n}", min_idle_time=0, message_ids=ids)
    return ids


async def test_an_entry_delivered_too_often_is_dead_lettered_with_an_error_event(
    stack: Stack, redis: aioredis.Redis
) -> None:
    api = stack.start_api().url
    topic = stack.config.callback_topic
    queue = stack.queue(redis)
    await queue.ensure_group()
    keys = RedisKeys(stack.config.redis_prefix)
    stream = keys.streams[1]
    group = f"{stack.config.group}-workers"
    whole = QueuedRequest.from_request(
        LLMComparisonRequest.model_validate(request(topic, "poison-whole")), 3600
    )
    await redis.xadd(stream, {"r": whole.model_dump_json()})
    partial_cid = uuid.uuid4()
    partial = {
        "correlation_id": str(partial_cid),
        "callback_topic": topic,
        "request_data": {"metadata": {"case": "poison-partial"}, "essay_a": 5},
    }
    await redis.xadd(stream, {"r": json.dumps(partial)})
    await redis.xadd(stream, {"r": b"\xff not even json"})
    ids = await _deliver_to_dead_workers(redis, stream, group, 6)
    assert len(ids) == 3

    worker = stack.start_worker("w1", CJ_WORKER_MAX_DELIVERIES="5").url
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        normal = await client.post("/api/v1/comparison", json=request(topic, "normal"))
        assert normal.status_code == 202, normal.text
    events = by_case(await collect(stack, 3, settle=2.0))
    assert sorted(events) == ["normal", "poison-partial", "poison-whole"]
    assert events["normal"].data.is_success
    for case, cid in (("poison-whole", whole.correlation_id), ("poison-partial", partial_cid)):
        data = events[case].data
        assert data.correlation_id == cid
        assert data.error_detail is not None
        assert data.error_detail.error_code is LLMErrorCode.INTERNAL_ERROR
        assert data.error_detail.retryable is False
        assert data.error_detail.details["deliveries"] == 7  # 6 to dead workers, then ours
    assert events["poison-whole"].data.request_id == str(whole.queue_id)

    entries: Any = await redis.xrange(keys.dead_letter)
    assert sorted(f[b"id"].decode() for _, f in entries) == sorted(ids)
    for _, fields in entries:
        assert b"delivered 7 times" in fields[b"reason"]
    kept = {f[b"id"].decode(): f[b"result"] for _, f in entries}
    assert kept[ids[2]] == b""  # unreadable: no correlation id, no event
    assert Event.model_validate_json(kept[ids[0]]).data.correlation_id == whole.correlation_id
    assert metric(worker, "cj_provider_dead_letters_total", reason="max_deliveries") == 3
    await assert_settled(stack, redis)
