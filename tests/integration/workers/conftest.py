"""Fixtures of the provider-side integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.conftest import TopicFactory
from tests.integration.workers.stack import Stack
from tests.support.devcluster import ClusterEnv


@pytest_asyncio.fixture
async def callback_topic(kafka_topic: TopicFactory) -> str:
    """A fresh callback topic with 3 partitions."""
    return await kafka_topic("callbacks", partitions=3)


@pytest.fixture
def stack(
    cluster: ClusterEnv, redis_prefix: str, callback_topic: str, tmp_path: Path
) -> Iterator[Stack]:
    """API and workers of one test; all stopped afterwards (logs under tmp_path)."""
    s = Stack(cluster, redis_prefix, callback_topic, tmp_path)
    yield s
    s.stop_all()


@pytest_asyncio.fixture
async def redis(cluster: ClusterEnv) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the cluster's Redis."""
    client = aioredis.from_url(cluster.redis_url)
    yield client
    await client.aclose()
