"""Worker failures on the real services: SIGKILL mid-request, SIGTERM drain, Kafka down."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

import httpx
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from cj_workers.keys import RedisKeys
from cj_workers.ratelimit import RedisRateLimiter, Reservation
from cj_workers.settings import RateLimit
from common_core import LLMProviderType
from tests.integration.workers.comparisons import Event, collect, request
from tests.support.devcluster import REPO_ROOT, ClusterEnv
from tests.support.isolation import TopicFactory, unique_name
from tests.support.metrics import metric
from tests.support.polling import wait_for
from tests.support.processes import free_port
from tests.support.stack import Stack

MOCK = {"provider_override": "mock", "model_override": "mock"}
OFFLINE = {"provider_override": "offline"}


async def submit(api: str, topic: str, cases: list[str], overrides: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        bodies = [request(topic, c, llm_config_overrides=overrides) for c in cases]
        response = await client.post("/api/v1/comparisons", json={"requests": bodies})
        assert response.status_code == 202, response.text


async def test_sigkill_mid_request_then_another_worker_completes_it(
    stack: Stack, redis: aioredis.Redis
) -> None:
    api = stack.start_api().url
    doomed = stack.start_worker("doomed", CJ_WORKER_MOCK_LATENCY_MS="60000")
    queue = stack.queue(redis)
    await submit(api, stack.config.callback_topic, ["k1"], MOCK)

    async def taken() -> bool:
        return await queue.pending_count() == 1

    await wait_for(taken, 30, "entry taken by the first worker")
    doomed.kill()
    rescuer = stack.start_worker("rescuer").url
    events = await collect(stack, 1, settle=1.0)
    assert len(events) == 1 and events[0][1].data.is_success
    assert metric(rescuer, "cj_provider_reclaimed_total") == 1

    async def settled() -> bool:
        return await queue.pending_count() == 0 and sum((await queue.depth()).values()) == 0

    await wait_for(settled, 10, "empty stream after the rescue")


async def test_sigterm_finishes_in_flight_work_and_leaves_the_rest_pending(
    stack: Stack, redis: aioredis.Redis
) -> None:
    api = stack.start_api().url
    queue = stack.queue(redis)
    worker = stack.start_worker(
        "drainer", CJ_WORKER_MOCK_LATENCY_MS="1500", CJ_WORKER_CONCURRENCY="4"
    )
    await submit(api, stack.config.callback_topic, ["d1", "d2", "d3"], MOCK)

    async def all_taken() -> bool:
        return await queue.pending_count() == 3

    await wait_for(all_taken, 30, "three entries in flight")
    worker.signal(signal.SIGTERM)
    assert worker.proc is not None
    assert await asyncio.to_thread(worker.proc.wait, 30) == 0, worker.tail()
    events = await collect(stack, 3)
    assert sorted(e.data.request_metadata["case"] for _, e in events) == ["d1", "d2", "d3"]
    assert await queue.pending_count() == 0

    # Past the deadline the worker exits anyway and the entry stays pending for another.
    slow = stack.start_worker(
        "slow", CJ_WORKER_MOCK_LATENCY_MS="60000", CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS="1"
    )
    await submit(api, stack.config.callback_topic, ["late"], MOCK)

    async def one_taken() -> bool:
        return await queue.pending_count() == 1

    await wait_for(one_taken, 30, "the slow entry in flight")
    slow.signal(signal.SIGTERM)
    assert slow.proc is not None
    assert await asyncio.to_thread(slow.proc.wait, 30) == 0, slow.tail()
    assert "deadline reached; entries left pending" in slow.log_path.read_text()
    assert await queue.pending_count() == 1
    assert len(await collect(stack, 3, settle=1.0)) == 3


async def test_kafka_down_keeps_the_entry_pending_until_a_worker_can_publish(
    stack: Stack, redis: aioredis.Redis
) -> None:
    api = stack.start_api().url
    queue = stack.queue(redis)
    closed = f"127.0.0.1:{free_port()}"
    cut_off = stack.start_worker(
        "cut-off",
        KAFKA_BOOTSTRAP_SERVERS=closed,
        CJ_KAFKA_BOOTSTRAP_TIMEOUT_SECONDS="2",
        CJ_WORKER_PUBLISH_TIMEOUT_SECONDS="1",
        CJ_WORKER_PUBLISH_BACKOFF_MAX_SECONDS="0.5",
        CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS="1",
    )
    cut_url = cut_off.url
    await submit(api, stack.config.callback_topic, ["survivor"], OFFLINE)

    async def failing() -> bool:
        return metric(cut_url, "cj_provider_callback_publish_failures_total") >= 2

    await wait_for(failing, 60, "publish failures while Kafka is unreachable")
    assert await queue.pending_count() == 1
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(f"{cut_url}/readyz")).status_code == 503
    assert cut_off.stop() == 0
    assert await queue.pending_count() == 1

    stack.start_worker("healthy")
    events = await collect(stack, 1, settle=1.0)
    assert [e.data.request_metadata["case"] for _, e in events] == ["survivor"]

    async def acked() -> bool:
        return await queue.pending_count() == 0

    await wait_for(acked, 10, "acknowledgement after the publish")


def _bootstrap(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cj_workers.bootstrap_topics"],
        env={"PATH": "/usr/bin:/bin", "CJ_LOG_FORMAT": "json", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_bootstrap_topics_command_creates_topics_idempotently(cluster: ClusterEnv) -> None:
    topics = [f"{unique_name('test.')}.callbacks", f"{unique_name('test.')}.completed"]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.kafka_bootstrap_servers,
        "CJ_KAFKA_TOPICS": str(topics).replace("'", '"'),
        "CJ_KAFKA_TOPIC_PARTITIONS": "2",
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_servers)
    await admin.start()
    try:
        first = await asyncio.to_thread(_bootstrap, env)
        assert first.returncode == 0, first.stderr
        assert first.stderr.count('"state": "created"') == 2
        described = await admin.describe_topics(topics)
        assert sorted(len(t["partitions"]) for t in described) == [2, 2]
        again = await asyncio.to_thread(_bootstrap, env)
        assert again.returncode == 0, again.stderr
        assert again.stderr.count('"state": "exists"') == 2
    finally:
        await admin.delete_topics(topics)
        await admin.close()
    down = await asyncio.to_thread(
        _bootstrap,
        {
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "CJ_KAFKA_BOOTSTRAP_TIMEOUT_SECONDS": "2",
        },
    )
    assert down.returncode == 1
    assert "topic bootstrap failed" in down.stderr


async def test_rate_limit_is_shared_between_workers(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    limits = {LLMProviderType.OPENAI: RateLimit(requests_per_minute=3, tokens_per_minute=0)}
    worker_a = RedisRateLimiter(redis, RedisKeys(redis_prefix), limits)
    worker_b = RedisRateLimiter(redis, RedisKeys(redis_prefix), limits)
    grants = [
        await limiter.acquire(LLMProviderType.OPENAI, 100)
        for limiter in (worker_a, worker_b, worker_a)
    ]
    assert all(isinstance(g, Reservation) for g in grants)
    refused = await worker_b.acquire(LLMProviderType.OPENAI, 100)
    assert isinstance(refused, float) and 0 < refused <= 60
    assert not worker_a.limited(LLMProviderType.ANTHROPIC)
    assert isinstance(await worker_a.acquire(LLMProviderType.ANTHROPIC, 10**9), Reservation)


async def test_token_limit_counts_reported_usage(redis: aioredis.Redis, redis_prefix: str) -> None:
    limits = {LLMProviderType.ANTHROPIC: RateLimit(tokens_per_minute=1000)}
    limiter = RedisRateLimiter(redis, RedisKeys(redis_prefix), limits)
    first = await limiter.acquire(LLMProviderType.ANTHROPIC, 600)
    assert isinstance(first, Reservation)
    assert isinstance(await limiter.acquire(LLMProviderType.ANTHROPIC, 600), float)
    await limiter.settle(first, 100)  # the call used far fewer tokens than estimated
    assert isinstance(await limiter.acquire(LLMProviderType.ANTHROPIC, 600), Reservation)


async def test_a_deleted_callback_topic_does_not_stall_other_work(
    stack: Stack, redis: aioredis.Redis, kafka_topic: TopicFactory
) -> None:
    api = stack.start_api().url
    doomed = await kafka_topic("doomed")
    await submit(api, doomed, ["orphan"], OFFLINE)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.config.cluster.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([doomed])
    finally:
        await admin.close()
    await submit(api, stack.config.callback_topic, ["delivered"], OFFLINE)

    stack.start_worker(
        "w1",
        CJ_WORKER_MISSING_TOPIC_ATTEMPTS="3",
        CJ_WORKER_PUBLISH_BACKOFF_MAX_SECONDS="0.5",
        CJ_WORKER_PUBLISH_TIMEOUT_SECONDS="3",
    )
    events = await collect(stack, 1, settle=1.0)
    assert [e.data.request_metadata["case"] for _, e in events] == ["delivered"]

    dead_key = RedisKeys(stack.config.redis_prefix).dead_letter

    async def dead_lettered() -> bool:
        return int(await redis.xlen(dead_key)) == 1

    await wait_for(dead_lettered, 60, "the orphaned result in the dead-letter stream")
    entries: Any = await redis.xrange(dead_key)
    [(_, fields)] = entries
    assert b"does not exist" in fields[b"reason"]
    kept = Event.model_validate_json(fields[b"result"])
    assert kept.data.request_metadata["case"] == "orphan"
    assert kept.data.is_success
    assert await stack.queue(redis).pending_count() == 0
