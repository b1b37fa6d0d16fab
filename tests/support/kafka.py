"""Read what the system published on a Kafka topic: one collector for tests and benchmarks;
and create or delete the topics a run uses.

Every read starts at the beginning of the topic with no consumer group (nothing committed), so
a test sees each event however often it reads.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

Record = Any
"""aiokafka's ConsumerRecord (key, value, timestamp, headers, ...); aiokafka is untyped."""


async def collect_records(
    bootstrap_servers: str,
    topic: str,
    count: int | None = None,
    *,
    within: float = 60.0,
    settle: float = 0.0,
    idle: float = 3.0,
    strict: bool = False,
    fetch_bytes: int = 1024 * 1024,
) -> list[Record]:
    """Records of `topic` from its start.

    With `count`: read until `count` records arrived or `within` s passed (AssertionError then
    if `strict`), then `settle` s more, to see any extra. Without: read until `idle` s bring
    nothing (or `within` s passed). `fetch_bytes` is the consumer's per-partition fetch size.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=fetch_bytes,
    )
    await consumer.start()
    out: list[Record] = []
    try:
        deadline = time.monotonic() + within
        if count is None:
            while time.monotonic() < deadline:
                polled = await consumer.getmany(timeout_ms=int(idle * 1000))
                if not polled:
                    break
                out += [r for records in polled.values() for r in records]
            return out
        while len(out) < count and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=500, max_records=5000)
            out += [r for records in polled.values() for r in records]
        if strict and len(out) < count:
            raise AssertionError(f"{len(out)} of {count} records on {topic} after {within} s")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            polled = await consumer.getmany(timeout_ms=200)
            out += [r for records in polled.values() for r in records]
    finally:
        await consumer.stop()
    return out


async def collect_events(
    bootstrap_servers: str, topic: str, model: type[M], count: int | None = None, **read: Any
) -> list[M]:
    """The records' values parsed as `model` (e.g. EventEnvelope[LLMComparisonResultV1]);
    `count` and `read` as for collect_records."""
    records = await collect_records(bootstrap_servers, topic, count, **read)
    return [model.model_validate_json(r.value) for r in records]


async def collect_keyed(
    bootstrap_servers: str, topic: str, model: type[M], count: int | None = None, **read: Any
) -> list[tuple[bytes | None, M]]:
    """(key, value parsed as `model`) of each record; arguments as for collect_events."""
    records = await collect_records(bootstrap_servers, topic, count, **read)
    return [(r.key, model.model_validate_json(r.value)) for r in records]


async def create_topic(
    bootstrap_servers: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    """Create topic `name` (replication 1) with topic-level `configs`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: list[str]) -> None:
    """Delete those of `names` that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if todo := [n for n in names if n in existing]:
            await admin.delete_topics(todo)
    finally:
        await admin.close()
