"""The worker process: read the streams, judge concurrently, publish, then acknowledge.

Delivery: an entry is acknowledged (XACK + XDEL) only after Kafka acknowledged its event.
While Kafka refuses, the worker keeps the answer, retries the publish with backoff and reads
nothing new; the entry stays pending. A callback topic that no longer exists (the broker
answers, the topic is gone) stops nothing else: after `missing_topic_attempts` the entry and
its serialised result move to the dead-letter stream. Entries of a dead worker are reclaimed
after the visibility timeout; live workers heartbeat theirs. SIGTERM: stop reading, give in-flight
work `shutdown_deadline_seconds`, then cancel it, leaving those entries pending.

No single message stops a worker (issue 11): a result too large for Kafka (over
`max_event_bytes`, or refused with MessageSizeTooLargeError) is replaced by a CONTENT_TOO_LONG
error event for the same correlation id; an entry delivered more than `max_deliveries` times
is given up on: an INTERNAL_ERROR event when its payload names a correlation id and callback
topic, then the dead-letter stream. Every dead letter is counted by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from cj_plumbing.backoff import exponential_backoff
from cj_plumbing.logs import configure_logging
from cj_plumbing.test_hooks import Point, hold_if_armed
from cj_workers.bootstrap_topics import bootstrap_at_start
from cj_workers.kafka_io import KafkaPublisher, Publisher, PublishError
from cj_workers.keys import PRIORITY_ORDER, RedisKeys
from cj_workers.manifest import ModelManifest
from cj_workers.metrics import WorkerMetrics
from cj_workers.providers.base import Judge
from cj_workers.providers.registry import build_judges
from cj_workers.queue import RequestQueue, StreamEntry, connect_redis
from cj_workers.ratelimit import RedisRateLimiter
from cj_workers.redis_check import EvictingRedisError, require_noeviction
from cj_workers.results import envelope, poison_result, too_large_result
from cj_workers.settings import WorkerSettings
from cj_workers.worker.poison import poison_target
from cj_workers.worker.processor import RequestProcessor
from common_core import LLMComparisonResultV1, LLMProviderType, QueuedRequest
from common_core.metadata_keys import BATCH_ID

log = structlog.get_logger(__name__)

CANCEL_REFRESH_SECONDS = 1.0
"""A cancellation reaches every worker within this long."""


class CallbackTopicMissingError(Exception):
    """A result's callback topic does not exist after repeated attempts."""


class EventTooLargeError(Exception):
    """The producer or the broker refused an event for its size."""


@dataclass(frozen=True)
class _Delivery:
    """The last envelope tried, and (label, reason) for the dead-letter stream when it was not
    published."""

    value: bytes
    failure: tuple[str, str] | None


class WorkerService:
    """One worker process's loops (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        redis: aioredis.Redis,
        publisher: Publisher,
        judges: dict[LLMProviderType, Judge],
        metrics: WorkerMetrics,
    ) -> None:
        self.s = settings
        self.redis = redis
        self.queue = RequestQueue(
            redis, RedisKeys(settings.redis_key_prefix), settings.consumer_group
        )
        self.publisher = publisher
        self.judges = judges
        self.metrics = metrics
        self.processor = RequestProcessor(
            settings,
            judges,
            ModelManifest.load(settings.model_manifest_path),
            RedisRateLimiter(redis, self.queue.keys, settings.rate_limits),
            self._is_cancelled,
            metrics,
        )
        self._cancelled: set[str] = set()
        self._cancelled_at = float("-inf")
        self.in_flight: dict[str, tuple[StreamEntry, asyncio.Task[None]]] = {}
        self.stopping = asyncio.Event()
        self.publish_ok = asyncio.Event()
        self.publish_ok.set()
        self.ready = False

    # ---- main loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stopping` is set, then drain (see the module docstring)."""
        await self.queue.ensure_group()
        self.ready = True
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._reclaim_loop(), name="reclaim"),
            asyncio.create_task(self._depth_loop(), name="depth"),
        ]
        log.info(
            "worker started",
            consumer=self.s.consumer_name,
            concurrency=self.s.concurrency,
            streams=self.queue.keys.streams,
            judging_bound_s=self.s.judging_bound_seconds,
        )
        try:
            await self._read_loop()
        finally:
            self.ready = False
            await self._drain()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            log.info("worker stopped", left_pending=len(self.in_flight))

    async def _read_loop(self) -> None:
        while not self.stopping.is_set():
            free = self.s.concurrency - len(self.in_flight)
            if free <= 0 or not self.publish_ok.is_set():
                await self._wait_for_room()
                continue
            try:
                entries = await self.queue.read(self.s.consumer_name, free, self.s.read_block_ms)
            except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
                log.warning("redis unavailable; retrying", error=str(exc))
                await self._sleep_unless_stopping(1.0)
                continue
            except aioredis.ResponseError as exc:
                if "NOGROUP" not in str(exc) and "no longer exists" not in str(exc):
                    raise
                # The stream or its group was deleted (e.g. FLUSHDB): create them again.
                log.warning("request stream or group missing; recreating", error=str(exc))
                await self.queue.ensure_group()
                continue
            for entry in entries:
                self._start(entry)

    async def _wait_for_room(self) -> None:
        waiters = [asyncio.create_task(self.stopping.wait())]
        tasks = [t for _, t in self.in_flight.values()]
        if not self.publish_ok.is_set():
            waiters.append(asyncio.create_task(self.publish_ok.wait()))
        done, _ = await asyncio.wait([*waiters, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            if w not in done:
                w.cancel()

    def _start(self, entry: StreamEntry) -> None:
        if entry.entry_id in self.in_flight:
            return
        task = asyncio.create_task(self._handle(entry), name=f"entry-{entry.entry_id}")
        self.in_flight[entry.entry_id] = (entry, task)
        self.metrics.in_flight.set(len(self.in_flight))
        task.add_done_callback(functools.partial(self._done, entry.entry_id))

    def _done(self, entry_id: str, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(entry_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "entry failed; it stays pending for another worker",
                entry_id=entry_id,
                error=repr(task.exception()),
            )
        self.metrics.in_flight.set(len(self.in_flight))

    async def _handle(self, entry: StreamEntry) -> None:
        if entry.deliveries > self.s.max_deliveries:
            await self._give_up(entry)
            return
        try:
            queued = QueuedRequest.model_validate_json(entry.payload or b"")
        except ValidationError as exc:
            log.error("unreadable queue entry moved to dead letter", entry_id=entry.entry_id)
            await self._dead_letter(entry, "unreadable", str(exc))
            return
        batch_id = queued.request_data.metadata.get(BATCH_ID)
        with structlog.contextvars.bound_contextvars(
            correlation_id=str(queued.correlation_id),
            batch_id=str(batch_id) if batch_id is not None else None,
        ):
            wait = time.time() - queued.queued_at.timestamp()
            self.metrics.queue_wait.labels(queued.priority.value).observe(max(0.0, wait))
            outcome = await self.processor.process(queued)
            if outcome.result is not None:
                delivery = await self._deliver(queued.callback_topic, outcome.result)
                if delivery.failure is not None:
                    log.error("result moved to dead letter", error=delivery.failure[1])
                    await self._dead_letter(entry, *delivery.failure, result=delivery.value)
                    return
                self.metrics.publish_duration.observe(time.monotonic() - outcome.answered_at)
                await hold_if_armed(
                    Point.WORKER_BEFORE_ACK,
                    correlation_id=str(queued.correlation_id),
                    entry_id=entry.entry_id,
                )
            await self._ack(entry)
            log.debug(
                "request done",
                status="skipped"
                if outcome.result is None
                else ("success" if outcome.result.is_success else "error"),
            )

    async def _deliver(self, topic: str, result: LLMComparisonResultV1) -> _Delivery:
        """Publish `result` (or, when it is too large for Kafka, its CONTENT_TOO_LONG
        replacement) until Kafka acknowledges it. Returns what was published, or the
        dead-letter reason when it cannot be: the topic is gone, or even the replacement is
        refused as too large."""
        key = str(result.correlation_id).encode()
        value = envelope(result, self.s.service_name)
        limit = self.s.max_event_bytes
        if len(value) > limit:
            log.warning("result event too large; publishing CONTENT_TOO_LONG", bytes=len(value))
            result = self._too_large(result, len(value), limit - 1024, refused_by_broker=False)
            value = envelope(result, self.s.service_name)
        refused_once = False
        while True:
            try:
                await self._publish_until_acked(topic, key, value)
            except CallbackTopicMissingError as exc:
                return _Delivery(value, ("missing_topic", str(exc)))
            except EventTooLargeError as exc:
                if refused_once:
                    return _Delivery(value, ("too_large", str(exc)))
                log.warning("broker refused the event as too large", error=str(exc))
                result = self._too_large(result, len(value), 4096, refused_by_broker=True)
                value = envelope(result, self.s.service_name)
                refused_once = True
            else:
                self.metrics.published.labels("success" if result.is_success else "error").inc()
                return _Delivery(value, None)

    def _too_large(
        self,
        result: LLMComparisonResultV1,
        event_bytes: int,
        budget: int,
        *,
        refused_by_broker: bool,
    ) -> LLMComparisonResultV1:
        bare = result.model_copy(update={"request_metadata": {}})
        base = len(envelope(bare, self.s.service_name)) + 1024  # the error detail's room
        return too_large_result(
            result,
            event_bytes=event_bytes,
            limit=self.s.max_event_bytes,
            metadata_budget=max(0, min(budget - base, self.s.max_event_bytes - base)),
            service=self.s.service_name,
            refused_by_broker=refused_by_broker,
        )

    async def _give_up(self, entry: StreamEntry) -> None:
        """An entry delivered more than max_deliveries times: publish an INTERNAL_ERROR event
        for its correlation id when the payload names one (and a callback topic), then move
        it to the dead-letter stream (which acknowledges it)."""
        reason = (
            f"delivered {entry.deliveries} times, more than CJ_WORKER_MAX_DELIVERIES "
            f"({self.s.max_deliveries})"
        )
        known = poison_target(entry.payload, self.s.default_provider, self.s.default_models)
        value = b""
        result = None
        if known is not None:
            topic, fields = known
            try:
                result = poison_result(
                    **fields,
                    deliveries=entry.deliveries,
                    limit=self.s.max_deliveries,
                    service=self.s.service_name,
                )
            except ValidationError as exc:  # the entry is given up on all the same
                reason = f"{reason}; no error event could be built: {exc.error_count()} errors"
        if result is None:
            log.error("poison entry moved to dead letter; no error event", reason=reason)
        else:
            with structlog.contextvars.bound_contextvars(correlation_id=str(result.correlation_id)):
                log.error("poison entry moved to dead letter with an error event", reason=reason)
                delivery = await self._deliver(topic, result)
            value = delivery.value
            if delivery.failure is not None:
                reason = f"{reason}; its error event was not published: {delivery.failure[1]}"
        await self._dead_letter(entry, "max_deliveries", reason, result=value)

    async def _dead_letter(
        self, entry: StreamEntry, label: str, reason: str, result: bytes = b""
    ) -> None:
        await self.queue.dead_letter(entry, reason, result=result)
        self.metrics.dead_letters.labels(label).inc()

    async def _publish_until_acked(self, topic: str, key: bytes, value: bytes) -> None:
        attempt = 0
        while True:
            try:
                await self.publisher.publish(topic, key, value)
            except PublishError as exc:
                attempt += 1
                self.metrics.publish_failures.inc()
                if exc.too_large:
                    raise EventTooLargeError(str(exc)) from exc
                if exc.topic_missing:
                    # The broker answers; only this topic is gone: keep reading other work.
                    if attempt >= self.s.missing_topic_attempts:
                        raise CallbackTopicMissingError(
                            f"callback topic {topic!r} does not exist "
                            f"({attempt} attempts); the result is kept in the dead-letter stream"
                        ) from exc
                else:
                    self.publish_ok.clear()
                # 0.4 s, 0.8 s, ... doubling for the first 10 failures, at most the maximum.
                delay = exponential_backoff(
                    min(attempt, 10),
                    base=0.4,
                    cap=self.s.publish_backoff_max_seconds,
                    jitter=False,
                )
                log.warning(
                    "publish failed; entry stays pending, retrying",
                    topic=topic,
                    attempt=attempt,
                    delay_s=delay,
                    error=str(exc),
                )
                await asyncio.sleep(delay)
            else:
                self.publish_ok.set()
                return

    async def _ack(self, entry: StreamEntry) -> None:
        for attempt in range(1, 1000):
            try:
                await self.queue.ack(entry)
                return
            except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
                log.warning("ack failed; retrying", error=str(exc), attempt=attempt)
                await asyncio.sleep(min(5.0, 0.2 * attempt))

    # ---- helpers ---------------------------------------------------------------------

    async def _is_cancelled(self, batch_id: str) -> bool:
        """Whether `batch_id` is cancelled, from a copy of the set refreshed at most once per
        CANCEL_REFRESH_SECONDS (one Redis call per second instead of one per request)."""
        if time.monotonic() - self._cancelled_at >= CANCEL_REFRESH_SECONDS:
            self._cancelled = await self.queue.cancelled_batches()
            self._cancelled_at = time.monotonic()
        return batch_id in self._cancelled

    async def _heartbeat_loop(self) -> None:
        interval = self.s.visibility_timeout_seconds / 3
        while True:
            await asyncio.sleep(interval)
            entries = [e for e, _ in self.in_flight.values()]
            if entries:
                try:
                    await self.queue.heartbeat(self.s.consumer_name, entries)
                except Exception as exc:  # keep beating; the next round retries
                    log.warning("heartbeat failed", error=str(exc))

    async def _reclaim_loop(self) -> None:
        min_idle_ms = int(self.s.visibility_timeout_seconds * 1000)
        while True:
            await asyncio.sleep(self.s.reclaim_interval_seconds)
            if self.stopping.is_set() or not self.publish_ok.is_set():
                continue
            free = self.s.concurrency - len(self.in_flight)
            if free <= 0:
                continue
            try:
                entries = await self.queue.reclaim(self.s.consumer_name, min_idle_ms, free)
            except Exception as exc:
                log.warning("reclaim failed", error=str(exc))
                continue
            for entry in entries:
                log.info("reclaimed entry of a dead worker", entry_id=entry.entry_id)
                self.metrics.reclaimed.inc()
                self._start(entry)

    async def _depth_loop(self) -> None:
        while True:
            try:
                depth = await self.queue.depth()
                for priority in PRIORITY_ORDER:
                    self.metrics.queue_depth.labels(priority.value).set(depth[priority])
            except Exception as exc:
                log.debug("depth sample failed", error=str(exc))
            await asyncio.sleep(5)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _drain(self) -> None:
        if not self.in_flight:
            return
        tasks = [t for _, t in self.in_flight.values()]
        log.info(
            "draining in-flight requests",
            count=len(tasks),
            deadline_s=self.s.shutdown_deadline_seconds,
        )
        _, pending = await asyncio.wait(tasks, timeout=self.s.shutdown_deadline_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("deadline reached; entries left pending", count=len(pending))


# ---- process ---------------------------------------------------------------------------


class _ServerWithoutSignals(uvicorn.Server):
    """uvicorn inside our own loop: the worker handles SIGTERM itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_app(service: WorkerService, registry: CollectorRegistry) -> FastAPI:
    """/healthz (process alive), /readyz (consumer group ready, Kafka accepting), /metrics."""
    app = FastAPI(title="cj-worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, object]:
        ready = service.ready and service.publish_ok.is_set()
        response.status_code = 200 if ready else 503
        return {"ready": ready, "in_flight": len(service.in_flight)}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def serve(settings: WorkerSettings) -> None:
    """Run one worker until SIGTERM/SIGINT, then drain and exit."""
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    redis = connect_redis(settings.redis_url, settings.redis_max_connections)
    publisher = KafkaPublisher(
        settings.kafka_bootstrap_servers,
        request_timeout_s=settings.publish_timeout_seconds,
        linger_ms=settings.kafka_linger_ms,
        client_id=f"cj-worker-{settings.consumer_name}",
    )
    judges = build_judges(settings)
    service = WorkerService(settings, redis, publisher, judges, metrics)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    server: _ServerWithoutSignals | None = None
    server_task: asyncio.Task[None] | None = None
    if settings.metrics_port:
        server = _ServerWithoutSignals(
            uvicorn.Config(
                health_app(service, registry),
                host=settings.metrics_host,
                port=settings.metrics_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        server_task = asyncio.create_task(server.serve())
    try:
        if settings.redis_require_noeviction:
            await require_noeviction(redis)
        await bootstrap_at_start(settings)
        await service.run()
    finally:
        if server is not None and server_task is not None:
            server.should_exit = True
            await server_task
        await publisher.close()
        for judge in judges.values():
            await judge.aclose()
        await redis.aclose()


def main() -> None:
    """Console entry point `cj-worker`."""
    settings = WorkerSettings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings))
    except EvictingRedisError as exc:
        sys.exit(f"cj-worker: refusing to start: {exc}")


if __name__ == "__main__":
    main()
