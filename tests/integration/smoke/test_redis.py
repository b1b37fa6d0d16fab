"""The Redis server is real: a stream with a consumer group, read, pending and acknowledged."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.support.devcluster import ClusterEnv


async def test_stream_consumer_group_cycle(cluster: ClusterEnv, redis_prefix: str) -> None:
    r = aioredis.from_url(cluster.redis_url, decode_responses=True)
    stream = redis_prefix + "requests"
    try:
        await r.xgroup_create(stream, "workers", id="0", mkstream=True)
        ids = [await r.xadd(stream, {"n": str(i)}) for i in range(3)]

        got: Any = await r.xreadgroup("workers", "w1", {stream: ">"}, count=10)
        assert [entry_id for entry_id, _ in got[0][1]] == ids
        assert [fields["n"] for _, fields in got[0][1]] == ["0", "1", "2"]

        pending = await r.xpending(stream, "workers")
        assert pending["pending"] == 3

        assert await r.xack(stream, "workers", ids[0], ids[1]) == 2
        pending = await r.xpending(stream, "workers")
        assert pending["pending"] == 1

        # The unacknowledged entry can be claimed by another consumer.
        _, claimed, _ = await r.xautoclaim(stream, "workers", "w2", min_idle_time=0)
        assert [entry_id for entry_id, _ in claimed] == [ids[2]]
    finally:
        await r.aclose()
