"""Kafka: the idempotent result producer, and the topic bootstrap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36


class PublishError(Exception):
    """The event was not acknowledged by Kafka (it may or may not have been written).

    `topic_missing` is True when the broker answered but the topic does not exist: the
    broker is fine and other topics can still be published to.
    """

    def __init__(self, message: str, *, topic_missing: bool = False) -> None:
        super().__init__(message)
        self.topic_missing = topic_missing


class Publisher(Protocol):
    """Publishes one message and returns only once Kafka acknowledged it."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Raises PublishError when Kafka did not acknowledge the message."""
        ...

    async def close(self) -> None:
        """Flush and close."""
        ...


class KafkaPublisher:
    """aiokafka producer with acks=all and idempotence, started lazily and restarted after a
    failed start, so a worker can run (and keep its entries pending) while Kafka is down."""

    def __init__(
        self, bootstrap_servers: str, *, request_timeout_s: float, linger_ms: int, client_id: str
    ) -> None:
        self._servers = bootstrap_servers
        self._timeout_ms = int(request_timeout_s * 1000)
        self._linger_ms = linger_ms
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._servers,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self._linger_ms,
                    request_timeout_ms=self._timeout_ms,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout_ms / 1000)
                except BaseException:
                    await _quiet_stop(producer)
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send and wait for the broker's acknowledgement (acks=all).

        Raises PublishError; its `topic_missing` is True only when the broker, asked afresh
        for its metadata, answers without `topic`.
        """
        producer: AIOKafkaProducer | None = None
        try:
            producer = await self._ensure()
            await asyncio.wait_for(
                producer.send_and_wait(topic, value=value, key=key), self._timeout_ms / 1000
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            missing = producer is not None and await self._topic_missing(producer, topic)
            reason = (
                f"topic {topic!r} does not exist" if missing else f"{type(exc).__name__}: {exc}"
            )
            raise PublishError(reason, topic_missing=missing) from exc

    async def _topic_missing(self, producer: AIOKafkaProducer, topic: str) -> bool:
        """True when a broker answers a metadata request and `topic` is not in it; False when
        no broker answers (then nothing can be said about the topic)."""
        try:
            metadata = await asyncio.wait_for(
                producer.client.fetch_all_metadata(), self._timeout_ms / 1000
            )
        except Exception:
            return False
        return topic not in metadata.topics()

    async def healthy(self) -> bool:
        """True when the producer is started (Kafka answered at least once)."""
        return self._producer is not None

    async def close(self) -> None:
        """Flush pending sends and stop."""
        if self._producer is not None:
            await _quiet_stop(self._producer)
            self._producer = None


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 10)
    except Exception as exc:
        log.debug("producer stop failed", error=repr(exc))


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int | None = None,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create the missing `topics`; returns topic -> "created" or "exists".

    Idempotent (a concurrent creation counts as "exists"). Raises `RuntimeError` naming the
    topic and Kafka's error when a creation fails, `TimeoutError` when Kafka does not answer
    within `timeout_s`.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            outcome = {t: "exists" for t in topics if t in existing}
            missing = [t for t in topics if t not in existing]
            if missing:
                configs = (
                    {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas else {}
                )
                response = await admin.create_topics(
                    [
                        NewTopic(t, partitions, replication_factor, topic_configs=configs)
                        for t in missing
                    ]
                )
                for topic_error in response.topic_errors:
                    name, code = topic_error[0], topic_error[1]
                    message = topic_error[2] if len(topic_error) > 2 else ""
                    if code == 0:
                        outcome[name] = "created"
                    elif code == _TOPIC_ALREADY_EXISTS:
                        outcome[name] = "exists"
                    else:
                        raise RuntimeError(
                            f"cannot create topic {name!r}: Kafka error {code} {message}"
                        )
            return outcome
    finally:
        await admin.close()


async def list_topics(bootstrap_servers: str, timeout_s: float) -> set[str]:
    """The broker's topic names. Raises TimeoutError / Kafka errors when unreachable."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            return set(await admin.list_topics())
    finally:
        await admin.close()
