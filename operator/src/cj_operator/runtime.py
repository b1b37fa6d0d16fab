"""The operator process's runtime: its connections and background tasks, built at start-up.

kopf's handlers (cj_operator.handlers) only admit, update and delete batches; the work runs
in four tasks that exist once per process and run only while this replica is active:
the batch engine, the callback consumer, the batch monitor and the status patcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import structlog
from prometheus_client import start_http_server
from sqlalchemy import text

from cj_operator.db import batches, reads
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.session import Database
from cj_operator.engine import BatchEngine
from cj_operator.essays_source import (
    EssaySourceError,
    EssaySourceMissingError,
    check_batch_essays,
    essays_from_config_map,
)
from cj_operator.k8s_io import BatchRef, KubeApi, KubernetesApi, api_client
from cj_operator.kafka_io import CallbackConsumer, EventPublisher
from cj_operator.leadership import PeeringGate, supervise
from cj_operator.lifecycle.reasons import Reason
from cj_operator.limits import resolve_limits
from cj_operator.metrics import OperatorMetrics
from cj_operator.migrate import upgrade
from cj_operator.monitor import BatchMonitor
from cj_operator.provider_client import (
    HttpProviderApi,
    ProviderApi,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from cj_operator.settings import OperatorSettings
from cj_operator.spec import CJBatchSpec, Essay
from cj_operator.status.patcher import StatusPatcher
from cj_plumbing.breaker import CircuitBreaker
from cj_plumbing.kafka_admin import ensure_topics

log = structlog.get_logger("cj_operator.runtime")


class EssaysNotReadyError(Exception):
    """A ConfigMap the batch reads is missing; the handler retries later."""


class Runtime:
    """Everything the operator process runs; `start()` once, `stop()` at shutdown."""

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        standalone: bool,
        peering_name: str,
        peering_priority: int,
        identity: str | None,
        kube: KubeApi | None = None,
        provider: ProviderApi | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = OperatorMetrics()
        self.db = Database(settings.database_url, settings.db_pool_size)
        self.kube: KubeApi = kube or KubernetesApi(api_client(settings.kubeconfig))
        self._http_provider: HttpProviderApi | None = None
        if provider is None:
            self._http_provider = HttpProviderApi(
                settings.provider_api_url,
                token=(
                    settings.provider_api_token.get_secret_value()
                    if settings.provider_api_token
                    else None
                ),
                timeout_seconds=settings.provider_api_timeout_seconds,
                breaker=CircuitBreaker(
                    settings.provider_circuit_failure_threshold,
                    settings.provider_circuit_reset_seconds,
                ),
            )
            provider = self._http_provider
        self.provider: ProviderApi = provider
        self.publisher = EventPublisher(settings.kafka_bootstrap_servers, settings.service_name)
        self.patcher = StatusPatcher(
            db=self.db,
            kube=self.kube,
            metrics=self.metrics,
            interval=settings.status_patch_interval_seconds,
        )
        self.engine = BatchEngine(
            settings=settings,
            db=self.db,
            provider=self.provider,
            kube=self.kube,
            publisher=self.publisher,
            metrics=self.metrics,
            on_change=self.patcher.mark,
        )
        self.monitor = BatchMonitor(
            db=self.db,
            engine=self.engine,
            metrics=self.metrics,
            interval_seconds=settings.monitor_interval_seconds,
            callback_timeout_seconds=settings.callback_timeout_seconds,
            phase_gauge_interval_seconds=settings.phase_gauge_interval_seconds,
        )
        self.consumer = CallbackConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.callback_topic,
            group_id=settings.consumer_group,
            dead_letter_topic=settings.dead_letter_topic,
            max_records=settings.callback_max_records,
            poll_timeout_ms=settings.callback_poll_timeout_ms,
            store=PostgresCallbackStore(self.db, settings.retry_backoff_seconds),
            publisher=self.publisher,
            metrics=self.metrics,
            on_recorded=self._on_recorded,
        )
        self.gate = PeeringGate(
            kube=self.kube,
            peering_name=peering_name,
            identity=identity,
            priority=peering_priority,
            standalone=standalone,
            poll_seconds=min(5.0, settings.peering_lifetime_seconds / 4),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics_server: Any = None

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate (when configured), connect, and start the supervised background work."""
        s = self.settings
        if s.migrate_on_start:
            await upgrade(s.database_url)
            log.info("database schema at head")
        if s.create_topics:
            created = await ensure_topics(
                s.kafka_bootstrap_servers,
                [s.callback_topic, s.completion_topic, s.dead_letter_topic],
                s.topic_partitions,
                s.topic_replication_factor,
            )
            if created:
                log.info("kafka topics created", topics=created)
        await self.publisher.start()
        if s.metrics_port:
            self._metrics_server = start_http_server(
                s.metrics_port, addr=s.metrics_host, registry=self.metrics.registry
            )
        self._tasks = [
            asyncio.create_task(self.gate.run(), name="cj-peering-gate"),
            asyncio.create_task(self._supervise(), name="cj-supervisor"),
        ]
        log.info(
            "operator runtime started",
            active=self.gate.active.is_set(),
            callback_timeout_minutes=round(s.callback_timeout_seconds / 60, 1),
        )
        if s.callback_timeout_seconds < s.queue_bound_seconds:
            log.warning(
                "CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES is below the queue's bound (request TTL "
                "+ judging): comparisons still queued will be re-submitted as overdue",
                callback_timeout_minutes=round(s.callback_timeout_seconds / 60, 1),
                queue_bound_minutes=round(s.queue_bound_seconds / 60, 1),
            )

    async def stop(self) -> None:
        """Stop the background work and close every connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.publisher.stop()
        if self._http_provider is not None:
            await self._http_provider.close()
        await self.db.dispose()
        if self._metrics_server is not None:
            server = self._metrics_server[0] if isinstance(self._metrics_server, tuple) else None
            if server is not None:
                server.shutdown()
        log.info("operator runtime stopped")

    async def _supervise(self) -> None:
        await supervise(
            self.gate,
            [
                self.engine.run,
                self.consumer.run,
                self.monitor.run,
                self.monitor.run_phase_gauge,
                self.patcher.run,
            ],
            lambda active: self.metrics.active.set(1 if active else 0),
        )

    def _on_recorded(self, uids: set[str], received_at: float) -> None:
        self.patcher.mark_callbacks(uids, received_at)
        for uid in uids:
            self.engine.wake(uid)

    # --- what the handlers ask --------------------------------------------------------------

    async def admit(
        self, *, uid: str, namespace: str, name: str, generation: int, spec: CJBatchSpec
    ) -> None:
        """Store a CJBatch and its essays (idempotent), then let the engine start it.

        Raises EssaysNotReadyError while a referenced ConfigMap or key is missing (the batch
        shows ConfigMapNotFound). Invalid essays fail the batch (reason InvalidEssays).
        """
        limits = resolve_limits(
            spec, self.settings.batch_timeout_seconds, self.settings.min_success_rate_threshold
        )
        created = await batches.register_batch(
            self.db,
            uid=uid,
            namespace=namespace,
            name=name,
            generation=generation,
            spec=spec,
            limits=limits,
        )
        if created:
            log.info("batch registered", batch=f"{namespace}/{name}", batch_uid=uid)
        ref = BatchRef(namespace, name, uid)
        if spec.cancel:
            await self._cancel(ref)
        elif await self._needs_essays(uid):
            try:
                essays = await self._load_essays(namespace, spec)
            except EssaySourceMissingError as exc:
                await batches.note_essays_problem(
                    self.db, uid, Reason.CONFIG_MAP_NOT_FOUND, str(exc), fatal=False
                )
                self.patcher.mark(uid)
                raise EssaysNotReadyError(str(exc)) from exc
            except EssaySourceError as exc:
                await batches.note_essays_problem(
                    self.db, uid, Reason.INVALID_ESSAYS, str(exc), fatal=True
                )
                await self._event(ref, "Warning", Reason.INVALID_ESSAYS, str(exc))
                self.engine.wake(uid)
                self.patcher.mark(uid)
                return
            state = await batches.store_essays(self.db, uid, essays)
            await self._event(
                ref, "Normal", Reason.ESSAYS_STORED, f"{len(essays)} essays stored ({state.value})."
            )
        self.engine.wake(uid)
        self.patcher.mark(uid)

    async def _needs_essays(self, uid: str) -> bool:
        snap = await reads.snapshot(self.db, uid)
        return snap is not None and snap.essays == 0 and snap.state.value == "INITIALIZING"

    async def _load_essays(self, namespace: str, spec: CJBatchSpec) -> list[Essay]:
        if spec.essays is not None:
            return list(spec.essays)
        essays: list[Essay] = []
        for ref in spec.essays_from or []:
            data = await self.kube.read_config_map(namespace, ref.config_map)
            if data is None:
                raise EssaySourceMissingError(
                    f"configmap/{ref.config_map} not found in namespace {namespace}"
                )
            essays.extend(essays_from_config_map(ref, data))
        return check_batch_essays(essays)

    async def update(
        self, *, uid: str, namespace: str, name: str, generation: int, spec: CJBatchSpec
    ) -> None:
        """Take over a changed spec (budget, stopping, limits, suspend, cancel) and wake the
        batch."""
        limits = resolve_limits(
            spec, self.settings.batch_timeout_seconds, self.settings.min_success_rate_threshold
        )
        await batches.apply_spec_update(self.db, uid, spec, generation, limits)
        if spec.cancel:
            await self._cancel(BatchRef(namespace, name, uid))
        self.engine.wake(uid)
        self.patcher.mark(uid)

    async def _cancel(self, ref: BatchRef) -> None:
        """`spec.cancel` is true: drop the batch's queued requests (best effort: answers that
        still come are stale) and finish it as CANCELLED (idempotent)."""
        if not await reads.is_unfinished(self.db, ref.uid):
            return
        try:
            await self.provider.cancel(ref.uid)
        except (ProviderUnavailableError, ProviderRejectedError) as exc:
            log.warning("provider cancel failed", batch_uid=ref.uid, error=str(exc))
        message = "spec.cancel was set before the batch finished."
        if await batches.cancel_batch(self.db, ref.uid, message):
            log.info("batch cancelled", batch=f"{ref.namespace}/{ref.name}", batch_uid=ref.uid)
            await self._event(ref, "Normal", Reason.CANCELLED, message)

    async def remove(self, *, uid: str, namespace: str, name: str, retry: int) -> None:
        """A CJBatch is being deleted: cancel its queued requests, finish it, apply retention.

        Raises ProviderUnavailableError for the first retries when the provider API cannot
        be reached (the handler retries); after that the deletion goes on without it.
        """
        try:
            await self.provider.cancel(uid)
        except (ProviderUnavailableError, ProviderRejectedError) as exc:
            if retry < 3:
                raise
            log.warning("provider cancel failed; deleting anyway", batch_uid=uid, error=str(exc))
        if await batches.cancel_batch(self.db, uid, "The CJBatch was deleted before it finished."):
            log.info("batch cancelled", batch=f"{namespace}/{name}", batch_uid=uid)
        await batches.forget_batch(self.db, uid, delete_rows=False)
        await self.engine.locked(uid, self.engine.followups)
        if self.settings.retention_on_delete == "delete":
            await batches.forget_batch(self.db, uid, delete_rows=True)

    async def _event(self, ref: BatchRef, kind: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(ref, kind, reason, message)
        except Exception as exc:  # Events are informational
            log.warning("could not post event", reason=reason, error=repr(exc))

    async def database_ok(self) -> bool:
        """True when PostgreSQL answers (for the liveness probe)."""
        async with self.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True


def default_priority(configured: int | None) -> int:
    """CJ_OPERATOR_PEERING_PRIORITY, or a random priority in 1..1,000,000."""
    return configured if configured is not None else random.randint(1, 1_000_000)
