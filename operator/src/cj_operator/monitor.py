"""The batch monitor: one task per operator (not one per batch).

Every BATCH_MONITOR_INTERVAL_MINUTES (and once at start-up) it
- closes comparisons whose callback is overdue (OperatorSettings.callback_timeout_seconds:
  derived from the queue's bound, or CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES) as failed,
  so the engine re-submits them within spec.limits.maxRetries;
- applies each batch's timeout (spec.limits.timeout, default BATCH_TIMEOUT_HOURS);
- wakes every unfinished batch and every finished one whose results or completion event are
  missing (this is how a restarted operator picks up where it stopped).

`run_phase_gauge` counts batches by phase for the `cj_operator_batches` gauge on its own,
shorter interval (CJ_OPERATOR_PHASE_GAUGE_INTERVAL_SECONDS), so dashboards follow batches
within seconds rather than monitor passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from cj_operator.clock import utcnow
from cj_operator.db import reads, rounds
from cj_operator.db.session import Database
from cj_operator.engine import BatchEngine
from cj_operator.metrics import OperatorMetrics
from common_core import BatchStateEnum

log = structlog.get_logger("cj_operator.monitor")


class BatchMonitor:
    """See the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        engine: BatchEngine,
        metrics: OperatorMetrics,
        interval_seconds: float,
        callback_timeout_seconds: float,
        phase_gauge_interval_seconds: float = 15.0,
    ) -> None:
        self._db = db
        self._engine = engine
        self._metrics = metrics
        self._interval = interval_seconds
        self._callback_timeout = callback_timeout_seconds
        self._gauge_interval = phase_gauge_interval_seconds

    async def run(self) -> None:
        """Check now, then every interval, until cancelled (a failed check is logged)."""
        await _every(self._interval, self.check, "batch monitor check failed")

    async def run_phase_gauge(self) -> None:
        """Refresh the batches-by-phase gauge now, then every gauge interval, until cancelled."""
        await _every(self._gauge_interval, self.refresh_phase_gauge, "counting batches failed")

    async def refresh_phase_gauge(self) -> None:
        """Set `cj_operator_batches{phase}` from the database (deleted batches not counted)."""
        counts = await reads.count_by_state(self._db)
        for state in BatchStateEnum:
            self._metrics.batches.labels(state.value).set(counts.get(state, 0))

    async def check(self) -> None:
        """One pass (module docstring)."""
        started = time.perf_counter()
        now = utcnow()
        cutoff = now - timedelta(seconds=self._callback_timeout)
        for uid in await reads.with_overdue_pairs(self._db, cutoff):
            async with self._db.sessions.begin() as session:
                batch = await rounds.lock_batch(session, uid)
                if batch is None or batch.state not in reads.RUNNING:
                    continue
                count = await rounds.close_overdue(session, batch, cutoff)
            if count:
                self._metrics.comparisons_overdue.inc(count)
                log.warning(
                    "callbacks overdue; comparisons will be re-submitted",
                    batch_uid=uid,
                    overdue=count,
                )
        for uid in await reads.past_deadline(self._db, now):
            await self._engine.timeout(uid)
        for uid in await reads.unfinished_batches(self._db):
            self._engine.wake(uid)
        for uid in await reads.followups_due(self._db):
            self._engine.wake(uid)
        self._metrics.reconcile_duration.labels("monitor").observe(time.perf_counter() - started)


async def _every(interval: float, step: Callable[[], Awaitable[None]], failure: str) -> None:
    """Run `step` now and then every `interval` seconds until cancelled; a failing step is
    logged with `failure` and does not stop the loop."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failure)
        await asyncio.sleep(interval)
