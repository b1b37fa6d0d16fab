"""A full stack (provider API, two workers, operator) per end-to-end test, isolated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory
from tests.support.stack import Stack, StackConfig


@pytest_asyncio.fixture
async def stack(
    cjbatch_crd: str,
    cluster: ClusterEnv,
    namespace: str,
    database_url: str,
    redis_prefix: str,
    kafka_topic: TopicFactory,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The system's processes, watching only this test's namespace, with their own topics,
    Redis keys, consumer groups and database. Logs are in the test's tmp_path."""
    config = StackConfig(
        cluster=cluster,
        database_url=database_url,
        callback_topic=await kafka_topic("callbacks", partitions=3),
        completion_topic=await kafka_topic("completed"),
        dead_letter_topic=await kafka_topic("callbacks.dlq"),
        redis_prefix=redis_prefix,
        group=namespace,
        namespace=namespace,
        workers=2,
        operator=True,
    )
    running = Stack(config, tmp_path / "logs")
    try:
        running.start()
        yield running
    finally:
        running.stop()
