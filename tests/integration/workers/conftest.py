"""Fixtures of the provider-side integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, unique_name
from tests.support.stack import Stack, StackConfig


@pytest_asyncio.fixture
async def callback_topic(kafka_topic: TopicFactory) -> str:
    """A fresh callback topic with 3 partitions."""
    return await kafka_topic("callbacks", partitions=3)


@pytest.fixture
def stack(
    cluster: ClusterEnv, redis_prefix: str, callback_topic: str, tmp_path: Path
) -> Iterator[Stack]:
    """A provider side for one test, nothing started: the test starts its API and workers
    (`start_api`, `start_worker`); all stopped afterwards (logs under tmp_path)."""
    config = StackConfig(
        cluster=cluster,
        callback_topic=callback_topic,
        redis_prefix=redis_prefix,
        group=unique_name("t-"),
        workers=0,
        operator=False,
        callback_topic_pattern=r"^test\..+",
        provider_env={"CJ_LOG_LEVEL": "INFO"},
        worker_env={
            "CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS": "2",
            "CJ_WORKER_RECLAIM_INTERVAL_SECONDS": "0.5",
            "CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS": "10",
        },
    )
    s = Stack(config, tmp_path)
    yield s
    s.stop()


@pytest_asyncio.fixture
async def redis(cluster: ClusterEnv) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the cluster's Redis."""
    client = aioredis.from_url(cluster.redis_url)
    yield client
    await client.aclose()
