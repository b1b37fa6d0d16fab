"""Fixtures of the bad-input suite: a provider API of its own per module (real Redis and Kafka),
and a client on the cluster's Redis to see what it queued."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import unique_name
from tests.support.kafka import create_topic, delete_topics
from tests.support.stack import Stack, StackConfig


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def module_topic(cluster: ClusterEnv) -> AsyncIterator[str]:
    """A callback topic for the module (one partition), deleted afterwards."""
    name = f"{unique_name('test.')}.callbacks"
    await create_topic(cluster.kafka_bootstrap_servers, name)
    yield name
    await delete_topics(cluster.kafka_bootstrap_servers, [name])


@pytest.fixture(scope="module")
def api_stack(
    cluster: ClusterEnv, module_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The provider API alone (no workers) for one module: callback topics allowlisted to the
    module's topic only (the default policy), its own Redis prefix (keys deleted afterwards)."""
    config = StackConfig(
        cluster=cluster,
        callback_topic=module_topic,
        redis_prefix=unique_name("t:bad:") + ":",
        group=unique_name("t-bad-"),
        workers=0,
        operator=False,
        create_topics=False,
        callback_topic_pattern="",
    )
    stack = Stack(config, tmp_path_factory.mktemp("api"))
    stack.start_api()
    yield stack
    stack.stop()
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        keys = list(client.scan_iter(match=config.redis_prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest_asyncio.fixture
async def redis_client(cluster: ClusterEnv) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on the cluster's Redis."""
    client = aioredis.from_url(cluster.redis_url)
    yield client
    await client.aclose()
