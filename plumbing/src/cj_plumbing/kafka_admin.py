"""Kafka administration with aiokafka's admin client: create missing topics, list topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_ALREADY_EXISTS = 36
"""Kafka protocol error code TOPIC_ALREADY_EXISTS (another process created the topic first)."""

_DEFAULT_REQUEST_TIMEOUT_S = 40.0
"""aiokafka's own default request timeout, used when the caller sets no overall timeout."""


@contextlib.asynccontextmanager
async def _admin_client(
    bootstrap_servers: str, timeout_s: float | None
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; the whole block is limited to `timeout_s`
    seconds (also each request's timeout) when given."""
    request_timeout_s = _DEFAULT_REQUEST_TIMEOUT_S if timeout_s is None else timeout_s
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(request_timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    replication_factor: int,
    *,
    min_insync_replicas: int | None = None,
    timeout_s: float | None = None,
) -> list[str]:
    """Create those of `topics` that do not exist yet; returns the ones this call created
    (in the order given, duplicates once).

    Idempotent: a topic that exists, or that another process creates at the same moment, is
    left as it is and not returned. New topics get `partitions` partitions, `replication_factor`
    replicas and, when given, the topic config `min.insync.replicas`. With `timeout_s` the
    whole call (connection included) is limited to that many seconds.

    Raises RuntimeError naming the topic and Kafka's error code when a creation fails,
    TimeoutError when Kafka does not answer within `timeout_s`, and aiokafka's errors
    (KafkaConnectionError, ...) when no broker can be reached.
    """
    wanted = list(dict.fromkeys(topics))
    async with _admin_client(bootstrap_servers, timeout_s) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        configs = {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas else {}
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor, topic_configs=configs) for t in missing]
        )
        created: set[str] = set()
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            message = topic_error[2] if len(topic_error) > 2 else ""
            if code == 0:
                created.add(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"cannot create topic {name!r}: Kafka error {code} {message}")
        return [t for t in missing if t in created]


async def list_topics(bootstrap_servers: str, timeout_s: float) -> set[str]:
    """The broker's topic names, asked within `timeout_s` seconds.

    Raises TimeoutError, or aiokafka's errors, when Kafka cannot be reached.
    """
    async with _admin_client(bootstrap_servers, timeout_s) as admin:
        return set(await admin.list_topics())
