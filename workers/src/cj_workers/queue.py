"""The request queue: two Redis streams (high, normal) read by one consumer group.

The API enqueues with `enqueue` (atomic with the queue-full check); workers `read`,
`heartbeat` their in-flight entries, `reclaim` entries of dead workers and `ack` an entry
(XACK + XDEL, so a stream's length is what is still queued or in flight) only after its
event is on Kafka.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cj_workers.keys import PRIORITY_ORDER, RedisKeys
from common_core import QueuedRequest, QueuePriority

DRAIN_BUCKET_SECONDS = 10
DRAIN_WINDOW_BUCKETS = 6
"""Drain rate = requests finished over the last 6 buckets of 10 s, per second."""

# KEYS: high stream, normal stream, full flag, drain buckets... ARGV: high, low, n_buckets,
# then (stream index, payload) pairs. Returns {depth before, full (0/1), drained, ids...}
# where an id is "" for an entry refused because the queue is full.
_ENQUEUE = """
local high, low, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local depth = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2])
local drained = 0
for i = 1, nb do drained = drained + tonumber(redis.call('GET', KEYS[3 + i]) or '0') end
local full = redis.call('EXISTS', KEYS[3]) == 1
if full and depth < low then redis.call('DEL', KEYS[3]); full = false end
local out = {depth, 0, drained}
for i = 4, #ARGV, 2 do
  if (not full) and depth >= high then redis.call('SET', KEYS[3], '1'); full = true end
  if full then
    table.insert(out, '')
  else
    table.insert(out, redis.call('XADD', KEYS[tonumber(ARGV[i])], '*', 'r', ARGV[i + 1]))
    depth = depth + 1
  end
end
if full then out[2] = 1 end
return out
"""


@dataclass(frozen=True)
class EnqueueOutcome:
    """What `enqueue` did: per request its stream entry id, or None when refused (full).

    `depth_before` is the queue depth (both priorities) before these entries;
    `drain_rate` requests finished per second over the last minute (0 when none).
    """

    entry_ids: list[str | None]
    depth_before: int
    drain_rate: float
    full: bool


@dataclass(frozen=True)
class StreamEntry:
    """One delivered entry: its stream, id and raw payload (`r` field), and how often it has
    been delivered (1 when read new; for a reclaimed entry, XPENDING's delivery count, which
    counts this delivery)."""

    stream: str
    entry_id: str
    payload: bytes | None
    deliveries: int = 1


def connect_redis(url: str, max_connections: int) -> aioredis.Redis:
    """A Redis client on a blocking pool: when all `max_connections` are busy, a caller waits
    (up to 30 s) for one instead of failing, so hundreds of concurrent requests share a
    bounded number of connections."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30
    )
    return aioredis.Redis(connection_pool=pool)


class RequestQueue:
    """Redis operations on the request streams (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, group: str) -> None:
        self._redis = redis
        self.keys = keys
        self._group = group
        self._enqueue = redis.register_script(_ENQUEUE)

    async def enqueue(
        self, requests: list[QueuedRequest], high_water: int, low_water: int
    ) -> EnqueueOutcome:
        """Add `requests` in order unless the queue is full (hysteresis between the marks).

        Once the depth reaches `high_water` the queue is full until it falls below
        `low_water`; refused entries get None. One atomic script call for all of them.
        """
        bucket = int(time.time()) // DRAIN_BUCKET_SECONDS
        drain_keys = [self.keys.drained(bucket - i) for i in range(1, DRAIN_WINDOW_BUCKETS + 1)]
        args: list[str | int] = [high_water, low_water, len(drain_keys)]
        for request in requests:
            args.append(1 if request.priority is QueuePriority.HIGH else 2)
            args.append(request.model_dump_json())
        result = await self._enqueue(
            keys=[*self.keys.streams, self.keys.queue_full, *drain_keys], args=args
        )
        depth, full, drained = int(result[0]), bool(int(result[1])), int(result[2])
        ids = [(i.decode() if isinstance(i, bytes) else str(i)) or None for i in result[3:]]
        return EnqueueOutcome(
            entry_ids=ids,
            depth_before=depth,
            drain_rate=drained / (DRAIN_BUCKET_SECONDS * DRAIN_WINDOW_BUCKETS),
            full=full,
        )

    async def depth(self) -> dict[QueuePriority, int]:
        """Entries queued or in flight, per priority."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self.keys.streams:
                pipe.xlen(key)
            lengths = await pipe.execute()
        return {p: int(n) for p, n in zip(PRIORITY_ORDER, lengths, strict=True)}

    async def ensure_group(self) -> None:
        """Create the consumer group on both streams (from the start; idempotent)."""
        for key in self.keys.streams:
            try:
                await self._redis.xgroup_create(key, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, consumer: str, count: int, block_ms: int) -> list[StreamEntry]:
        """Up to `count` new entries, high priority first; blocks up to `block_ms` when none."""
        high, normal = self.keys.streams
        got = await self._xread(consumer, {high: ">"}, count, None)
        if len(got) < count:
            block = None if got else block_ms
            got += await self._xread(consumer, {high: ">", normal: ">"}, count - len(got), block)
        return got

    async def _xread(
        self, consumer: str, streams: dict[str, str], count: int, block: int | None
    ) -> list[StreamEntry]:
        reply = await self._redis.xreadgroup(
            self._group,
            consumer,
            cast(Any, streams),
            count=count,
            block=block,
        )
        return _entries(reply)

    async def ack(self, entry: StreamEntry) -> None:
        """Acknowledge and delete the entry, and count it as drained."""
        bucket = int(time.time()) // DRAIN_BUCKET_SECONDS
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(entry.stream, self._group, entry.entry_id)
            pipe.xdel(entry.stream, entry.entry_id)
            pipe.incr(self.keys.drained(bucket))
            pipe.expire(
                self.keys.drained(bucket), DRAIN_BUCKET_SECONDS * (DRAIN_WINDOW_BUCKETS + 2)
            )
            await pipe.execute()

    async def heartbeat(self, consumer: str, entries: list[StreamEntry]) -> None:
        """Reset the idle time of our in-flight entries so no one reclaims them."""
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xclaim(
                stream,
                self._group,
                consumer,
                min_idle_time=0,
                message_ids=cast(Any, ids),
                justid=True,
            )

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over entries pending longer than `min_idle_ms` (their worker died), each with
        its delivery count (XAUTOCLAIM counts a delivery; heartbeats do not).

        Entries deleted meanwhile are acknowledged away. High priority first.
        """
        taken: list[StreamEntry] = []
        for stream in self.keys.streams:
            if len(taken) >= count:
                break
            reply = await self._redis.xautoclaim(
                stream,
                self._group,
                consumer,
                min_idle_time=min_idle_ms,
                start_id="0-0",
                count=count - len(taken),
            )
            claimed = reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                await self._redis.xack(stream, self._group, *deleted)
            entries = [_entry(stream, i, f) for i, f in claimed if f is not None]
            taken += await self._with_deliveries(stream, consumer, entries)
        return taken

    async def _with_deliveries(
        self, stream: str, consumer: str, entries: list[StreamEntry]
    ) -> list[StreamEntry]:
        if not entries:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for e in entries:
                pipe.xpending_range(
                    stream,
                    self._group,
                    min=e.entry_id,
                    max=e.entry_id,
                    count=1,
                    consumername=consumer,
                )
            replies = await pipe.execute()
        out = []
        for entry, reply in zip(entries, replies, strict=True):
            count = int(reply[0]["times_delivered"]) if reply else entry.deliveries
            out.append(replace(entry, deliveries=count))
        return out

    async def pending_count(self) -> int:
        """Entries delivered but not acknowledged, over both streams."""
        total = 0
        for stream in self.keys.streams:
            try:
                info = await self._redis.xpending(stream, self._group)
            except ResponseError:
                continue
            total += int(info["pending"])
        return total

    async def dead_letter(self, entry: StreamEntry, reason: str, result: bytes = b"") -> None:
        """Move an entry to the dead-letter stream, then acknowledge it.

        Fields: `stream`, `id`, `reason`, `r` (the request payload) and `result` (the
        serialised event envelope when the request was answered but could not be delivered).
        """
        await self._redis.xadd(
            self.keys.dead_letter,
            {
                "stream": entry.stream,
                "id": entry.entry_id,
                "reason": reason[:1000],
                "r": entry.payload or b"",
                "result": result,
            },
        )
        await self.ack(entry)

    async def cancel_batch(self, batch_id: str, ttl_seconds: int) -> None:
        """Mark `batch_id` cancelled for `ttl_seconds`; expired marks are pruned."""
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.cancelled, {batch_id: now + ttl_seconds})
            pipe.zremrangebyscore(self.keys.cancelled, "-inf", now)
            await pipe.execute()

    async def cancelled_batches(self) -> set[str]:
        """Batch ids whose cancellation mark has not expired."""
        members = await self._redis.zrangebyscore(self.keys.cancelled, time.time(), "+inf")
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}


def _entry(stream: str | bytes, entry_id: str | bytes, fields: dict[bytes, bytes]) -> StreamEntry:
    name = stream.decode() if isinstance(stream, bytes) else stream
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return StreamEntry(stream=name, entry_id=eid, payload=fields.get(b"r"))


def _entries(reply: Any) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    if not reply:
        return out
    items = reply.items() if isinstance(reply, dict) else reply  # RESP3 dict or RESP2 list
    for stream, messages in items:
        if isinstance(messages, list) and messages and isinstance(messages[0], list):
            messages = messages[0]
        for entry_id, fields in messages:
            out.append(_entry(stream, entry_id, fields))
    return out
