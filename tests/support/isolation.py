"""Names and clean-up that keep one test's (or benchmark run's) work apart from every other's
on the shared local cluster."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from tests.support.devcluster import ClusterEnv

TopicFactory = Callable[..., Awaitable[str]]
"""The `kafka_topic` fixture: `await kafka_topic("callbacks", partitions=3)` -> a new topic."""


def unique_name(prefix: str) -> str:
    """`prefix` plus 10 random hex digits: a name no other test or run uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def delete_redis_keys(cluster: ClusterEnv, prefix: str) -> None:
    """Delete every Redis key that starts with `prefix`."""
    conn = aioredis.from_url(cluster.redis_url)
    try:
        keys = [k async for k in conn.scan_iter(match=prefix + "*")]
        if keys:
            await conn.delete(*keys)
    finally:
        await conn.aclose()
