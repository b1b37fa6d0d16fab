"""Kafka: the idempotent result producer (topic creation is in `cj_plumbing.kafka_admin`)."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from cj_plumbing.kafka_errors import needs_new_producer

log = structlog.get_logger(__name__)


class PublishError(Exception):
    """The event was not acknowledged by Kafka (it may or may not have been written).

    `topic_missing` is True when the broker answered but the topic does not exist: the
    broker is fine and other topics can still be published to. `too_large` is True when the
    producer or the broker refused the message for its size (MessageSizeTooLargeError):
    sending it again cannot succeed.
    """

    def __init__(
        self, message: str, *, topic_missing: bool = False, too_large: bool = False
    ) -> None:
        super().__init__(message)
        self.topic_missing = topic_missing
        self.too_large = too_large


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
    failed start, so a worker can run (and keep its entries pending) while Kafka is down; a
    producer that fell out of step with the broker (`cj_plumbing.kafka_errors`) is replaced."""

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
        for its metadata, answers without `topic`; its `too_large` when the message is over
        the producer's `max.request.size` or the broker's message size limit.
        """
        producer: AIOKafkaProducer | None = None
        try:
            producer = await self._ensure()
            await asyncio.wait_for(
                producer.send_and_wait(topic, value=value, key=key), self._timeout_ms / 1000
            )
        except asyncio.CancelledError:
            raise
        except MessageSizeTooLargeError as exc:
            raise PublishError(
                f"{type(exc).__name__}: {len(value)} bytes to {topic!r}", too_large=True
            ) from exc
        except Exception as exc:
            if producer is not None and needs_new_producer(exc):
                log.warning(
                    "producer out of step with the broker; starting a new one",
                    error=f"{type(exc).__name__}: {exc}",
                )
                await self._replace(producer)
                raise PublishError(f"{type(exc).__name__}: {exc}") from exc
            missing = producer is not None and await self._topic_missing(producer, topic)
            reason = (
                f"topic {topic!r} does not exist" if missing else f"{type(exc).__name__}: {exc}"
            )
            raise PublishError(reason, topic_missing=missing) from exc

    async def _replace(self, producer: AIOKafkaProducer) -> None:
        """Stop `producer` unless another caller already replaced it; the next publish starts
        a new one (cj_plumbing.kafka_errors)."""
        async with self._lock:
            if self._producer is not producer:
                return
            self._producer = None
        await _quiet_stop(producer)

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
