"""Kafka I/O of the operator: the callback consumer, dead letters, the completion event.

The consumer (one per operator process, on the active replica only) polls up to
CJ_OPERATOR_CALLBACK_MAX_RECORDS events, dead-letters the malformed ones, records the rest in
one database transaction, and only then commits the offsets. When that transaction fails
because the database refused the data (a value it cannot store), the poll is recorded record
by record: a record the database still refuses goes to the dead-letter topic with the reason,
the others are recorded, and the offsets are committed, so one poison event cannot stop the
consumer. When the database is unreachable instead, the consumer seeks back and tries the same
events again, so nothing is lost and nothing counts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import sqlalchemy.exc
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from cj_operator.accounting import Outcome, PollPlan
from cj_operator.metrics import OperatorMetrics
from cj_plumbing.backoff import exponential_backoff
from cj_plumbing.kafka_errors import needs_new_producer
from cj_plumbing.test_hooks import Point, hold_if_armed
from common_core import (
    CJAssessmentCompletedV1,
    EventEnvelope,
    LLMComparisonResultV1,
    ProcessingEvent,
)

log = structlog.get_logger("cj_operator.kafka")

COMPLETION_NAMESPACE = uuid.UUID("6f1c2a0e-8d0b-4b7e-9a59-5c2d3b1e0c11")
"""uuid5 namespace of completion event ids: one id per batch, so a re-publish is recognisable."""


def refused_data(exc: BaseException) -> bool:
    """True for a database error that means "this data cannot be stored" (SQLSTATE class 22,
    data exception: a value out of range, a string too long, a NUL byte; class 23, integrity
    constraint violation), as opposed to an unreachable or failing database."""
    if isinstance(exc, sqlalchemy.exc.DataError | sqlalchemy.exc.IntegrityError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        return str(getattr(exc.orig, "sqlstate", "") or "")[:2] in {"22", "23"}
    return False


class CallbackStore(Protocol):
    """Where the consumer records a poll (`cj_operator.db.callbacks.PostgresCallbackStore`)."""

    async def record(self, results: Sequence[LLMComparisonResultV1]) -> PollPlan:
        """Record one poll's results in one transaction and return the plan; raises when the
        transaction fails (the consumer then reads the same records again)."""
        ...


def parse_callback(value: bytes | None) -> LLMComparisonResultV1:
    """The result inside a callback event's envelope.

    Raises ValueError (pydantic's ValidationError included) when the value is not a valid
    `EventEnvelope[LLMComparisonResultV1]` JSON document.
    """
    if value is None:
        raise ValueError("empty event value (tombstone)")
    envelope = EventEnvelope[LLMComparisonResultV1].model_validate_json(value)
    return envelope.data


DEAD_LETTER_MAX_VALUE_BYTES = 512 * 1024
"""Longest value a dead letter copies; a longer one is cut (half the broker's 1 MiB default)."""

DEAD_LETTER_MAX_HEADER_BYTES = 64 * 1024
"""Most bytes of the source record's own headers a dead letter keeps (keys plus values)."""

_REASON_MAX_CHARS = 500
"""Longest reason written to a dead letter's header or a log line."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{exc.error_count()} validation error(s); first at {where}: {first['msg']}"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        # The driver's message, without the statement and its parameters (essay text).
        text = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        return text[:_REASON_MAX_CHARS]
    return str(exc)[:_REASON_MAX_CHARS]


class EventPublisher:
    """An idempotent producer (acks=all) for dead letters and completion events.

    A send that fails because the producer fell out of step with the broker
    (`cj_plumbing.kafka_errors`) drops that producer before the error is raised; the caller's
    retry starts a new one.
    """

    def __init__(self, bootstrap_servers: str, service_name: str) -> None:
        self._bootstrap = bootstrap_servers
        self._service = service_name
        self._producer: AIOKafkaProducer | None = None

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def start(self) -> None:
        """Connect to the brokers."""
        await self._ensure()

    async def stop(self) -> None:
        """Flush and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _send(self, topic: str, **record: Any) -> None:
        """send_and_wait; the producer is dropped (then the error re-raised) when the error
        says it is out of step with the broker."""
        producer = await self._ensure()
        try:
            await producer.send_and_wait(topic, **record)
        except Exception as exc:
            if needs_new_producer(exc):
                log.warning(
                    "producer out of step with the broker; starting a new one",
                    error=f"{type(exc).__name__}: {exc}",
                )
                await self._drop(producer)
            raise

    async def _drop(self, producer: AIOKafkaProducer) -> None:
        """Stop `producer` and forget it, unless a newer one took its place meanwhile."""
        if self._producer is producer:
            self._producer = None
        with contextlib.suppress(Exception):
            await producer.stop()

    async def dead_letter(self, topic: str, record: ConsumerRecord[Any, Any], reason: str) -> None:
        """Copy a malformed record to `topic`, with headers saying where and why.

        The value is copied verbatim up to DEAD_LETTER_MAX_VALUE_BYTES and cut there (header
        `cj-dlq-original-bytes` gives its full size); the record's own headers are kept up to
        DEAD_LETTER_MAX_HEADER_BYTES. A record that just fitted the broker's limit would
        otherwise not fit once the reason is added, and the consumer could never get past it.
        """
        headers = [
            ("cj-dlq-reason", reason[:1000].encode()),
            ("cj-dlq-source-topic", record.topic.encode()),
            ("cj-dlq-source-partition", str(record.partition).encode()),
            ("cj-dlq-source-offset", str(record.offset).encode()),
        ]
        kept = 0
        for key, value in record.headers or ():
            size = len(key) + len(value or b"")
            if not key.startswith("cj-dlq-") and kept + size <= DEAD_LETTER_MAX_HEADER_BYTES:
                headers.append((key, value))
                kept += size
        value = record.value
        if value is not None and len(value) > DEAD_LETTER_MAX_VALUE_BYTES:
            headers.append(("cj-dlq-original-bytes", str(len(value)).encode()))
            value = value[:DEAD_LETTER_MAX_VALUE_BYTES]
        await self._send(topic, value=value, key=record.key, headers=headers)

    async def publish_completion(self, topic: str, event: CJAssessmentCompletedV1) -> None:
        """Publish the batch's completion event, keyed by the batch uid.

        The envelope's `event_id` is derived from the batch uid (uuid5), the same for every
        attempt, so consumers can recognise a re-publish after a crash.
        """
        try:
            correlation = uuid.UUID(event.batch_id)
        except ValueError:
            correlation = uuid.uuid5(COMPLETION_NAMESPACE, event.batch_id)
        envelope = EventEnvelope[CJAssessmentCompletedV1](
            event_id=uuid.uuid5(COMPLETION_NAMESPACE, f"completed:{event.batch_id}"),
            event_type=ProcessingEvent.CJ_ASSESSMENT_COMPLETED.value,
            source_service=self._service,
            correlation_id=correlation,
            data=event,
        )
        await self._send(
            topic, value=envelope.model_dump_json().encode(), key=event.batch_id.encode()
        )


class CallbackConsumer:
    """Consumes comparison results and records them (module docstring for the guarantees).

    `on_recorded(batch_uids, received_at)` is called after each committed poll with the
    batches whose counters changed and the monotonic time the poll was received.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        dead_letter_topic: str,
        max_records: int,
        poll_timeout_ms: int,
        store: CallbackStore,
        publisher: EventPublisher,
        metrics: OperatorMetrics,
        on_recorded: Callable[[set[str], float], None],
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._group = group_id
        self._dlq = dead_letter_topic
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._on_recorded = on_recorded
        self.assigned = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled (leaving the group cleanly)."""
        consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_records,
        )
        await consumer.start()
        log.info("callback consumer started", topic=self._topic, group=self._group)
        failures = 0
        try:
            while True:
                polled = await consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                if consumer.assignment():
                    self.assigned.set()
                if polled:
                    failures = await self._handle_or_rewind(consumer, polled, failures)
                await self._observe_lag(consumer)
        finally:
            await consumer.stop()
            log.info("callback consumer stopped")

    async def _handle_or_rewind(
        self,
        consumer: AIOKafkaConsumer,
        polled: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        failures: int,
    ) -> int:
        """Record one poll; on failure seek back to its first records and wait: 0.5 s after
        the first failure, doubling with each consecutive one up to 30 s.

        `failures` counts the consecutive failed polls before this one; returns the count
        after it (0 once a poll is recorded)."""
        try:
            await self._handle(consumer, polled)
            return 0
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = exponential_backoff(failures + 1, base=0.5, cap=30.0, jitter=False)
            log.exception("recording callbacks failed; the poll is retried", delay=delay)
            for tp, records in polled.items():
                # A partition lost in a rebalance is re-read by its new owner from the
                # last committed offset; recording is idempotent either way.
                with contextlib.suppress(Exception):
                    consumer.seek(tp, records[0].offset)
            await asyncio.sleep(delay)
            return failures + 1

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Set the consumer-lag gauge: log end offset minus position, summed over the
        assigned partitions (partitions whose end offset is not yet known count 0)."""
        lag = 0
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                lag += max(0, end - await consumer.position(tp))
        self._metrics.callback_consumer_lag.set(lag)

    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        polled: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
    ) -> None:
        received = time.monotonic()
        started = time.perf_counter()
        parsed: list[tuple[ConsumerRecord[Any, Any], LLMComparisonResultV1]] = []
        malformed: list[tuple[ConsumerRecord[Any, Any], str]] = []
        for records in polled.values():
            for record in records:
                try:
                    parsed.append((record, parse_callback(record.value)))
                except ValueError as exc:
                    malformed.append((record, _reason(exc)))
        for record, reason in malformed:
            await self._dead_letter(record, reason, "malformed callback dead-lettered")
        outcomes, touched = await self._record(parsed)
        await hold_if_armed(
            Point.OPERATOR_BEFORE_OFFSET_COMMIT,
            records=len(parsed),
            correlation_ids=[str(result.correlation_id) for _, result in parsed],
        )
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in polled.items()})
        if malformed:
            self._metrics.dead_letters.inc(len(malformed))
            self._metrics.callbacks.labels(Outcome.MALFORMED.value).inc(len(malformed))
        self._metrics.dead_letters.inc(
            outcomes.get(Outcome.UNRECORDABLE, 0) + outcomes.get(Outcome.FORGED, 0)
        )
        for outcome, count in outcomes.items():
            self._metrics.callbacks.labels(outcome.value).inc(count)
        self._metrics.reconcile_duration.labels("callbacks").observe(time.perf_counter() - started)
        if outcomes.get(Outcome.UNKNOWN):
            log.info("callbacks with unknown correlation ids", count=outcomes[Outcome.UNKNOWN])
        self._on_recorded(touched, received)

    async def _record(
        self, parsed: list[tuple[ConsumerRecord[Any, Any], LLMComparisonResultV1]]
    ) -> tuple[Counter[Outcome], set[str]]:
        """Record the poll in one transaction; when the database refuses its data, record it
        record by record and dead-letter what it still refuses (module docstring). Returns
        the outcome counts and the batches whose counters changed; raises when the database
        cannot be reached (the caller rewinds)."""
        try:
            plan = await self._store.record([result for _, result in parsed])
            await self._dead_letter_forged(parsed, plan)
            self._count_late(plan)
            return plan.outcomes, plan.touched_batches
        except Exception as exc:
            if not refused_data(exc):
                raise
            log.warning(
                "the database refused a poll; recording it record by record",
                records=len(parsed),
                error=_reason(exc),
            )
        outcomes: Counter[Outcome] = Counter()
        touched: set[str] = set()
        for record, result in parsed:
            try:
                plan = await self._store.record([result])
            except Exception as exc:
                if not refused_data(exc):
                    raise
                reason = f"the database refused it: {_reason(exc)}"
                await self._dead_letter(record, reason, "unrecordable callback dead-lettered")
                outcomes[Outcome.UNRECORDABLE] += 1
                continue
            await self._dead_letter_forged([(record, result)], plan)
            self._count_late(plan)
            outcomes.update(plan.outcomes)
            touched |= plan.touched_batches
        return outcomes, touched

    def _count_late(self, plan: PollPlan) -> None:
        for call in plan.late:
            self._metrics.late_results.labels(call.outcome.value).inc()
            self._metrics.late_cost.labels(call.outcome.value).inc(call.result.cost_estimate)

    async def _dead_letter_forged(
        self,
        parsed: list[tuple[ConsumerRecord[Any, Any], LLMComparisonResultV1]],
        plan: PollPlan,
    ) -> None:
        """Dead-letter the records whose results the store found forged (not recorded)."""
        for forged, reason in plan.forged:
            # The store hands back the results it was given; a store that copies them is
            # matched by correlation id instead.
            record = next((rec for rec, result in parsed if result is forged), None) or next(
                rec for rec, result in parsed if result.correlation_id == forged.correlation_id
            )
            await self._dead_letter(record, reason, "forged callback dead-lettered")

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], reason: str, what: str) -> None:
        await self._publisher.dead_letter(self._dlq, record, reason)
        log.warning(what, partition=record.partition, offset=record.offset, reason=reason)
