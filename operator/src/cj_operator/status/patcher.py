"""The status patcher: the only writer of CJBatch `status`, coalescing changes per batch.

`mark(uid)` says a batch's database state changed. A batch is patched at most once per
CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS; marks in between are coalesced into the next patch,
which is built from a fresh database snapshot (so it always shows the latest state). A batch
whose stored version did not change since its last patch is not patched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from cj_operator.db import reads
from cj_operator.db.session import Database
from cj_operator.k8s_io import BatchRef, KubeApi
from cj_operator.metrics import OperatorMetrics
from cj_operator.status.build import build_status, status_patch
from cj_operator.status.model import Condition

log = structlog.get_logger("cj_operator.status")

CONCURRENT_PATCHES = 8


@dataclass
class Coalescer:
    """Which marked batches are due for a patch (pure timing; `clock` in seconds).

    A batch is due when it was marked and its last patch is at least `interval` old.
    """

    interval: float
    clock: Callable[[], float] = time.monotonic
    marked: dict[str, float] = field(default_factory=dict)
    """uid -> when first marked since its last patch."""
    last_patch: dict[str, float] = field(default_factory=dict)

    def mark(self, uid: str, at: float | None = None) -> None:
        """Note a change of `uid` (at `at`, default now); the earliest unpatched mark is kept."""
        when = self.clock() if at is None else at
        self.marked[uid] = min(self.marked.get(uid, when), when)

    def due(self) -> tuple[list[str], float | None]:
        """(batches to patch now, seconds until the next one is due or None)."""
        now = self.clock()
        ready: list[str] = []
        wait: float | None = None
        for uid in self.marked:
            since = now - self.last_patch.get(uid, float("-inf"))
            if since >= self.interval:
                ready.append(uid)
            else:
                left = self.interval - since
                wait = left if wait is None else min(wait, left)
        return ready, wait

    def taken(self, uid: str) -> float | None:
        """Start patching `uid`: clears its mark, records the time; returns when it was marked."""
        self.last_patch[uid] = self.clock()
        return self.marked.pop(uid, None)

    def forget(self, uid: str) -> None:
        """Drop every record of `uid` (the batch is gone)."""
        self.marked.pop(uid, None)
        self.last_patch.pop(uid, None)


class StatusPatcher:
    """Patches CJBatch status from PostgreSQL; see the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        kube: KubeApi,
        metrics: OperatorMetrics,
        interval: float,
    ) -> None:
        self._db = db
        self._kube = kube
        self._metrics = metrics
        self._coalescer = Coalescer(interval)
        self._wakeup = asyncio.Event()
        self._conditions: dict[str, list[Condition]] = {}
        self._patched_version: dict[str, tuple[int, int]] = {}
        self._callback_times: dict[str, float] = {}

    def mark(self, uid: str) -> None:
        """A batch changed: patch its status soon."""
        self._coalescer.mark(uid)
        self._wakeup.set()

    def mark_callbacks(self, uids: set[str], received_at: float) -> None:
        """Batches changed by callbacks received at `received_at` (monotonic), for latency."""
        for uid in uids:
            self._callback_times.setdefault(uid, received_at)
            self.mark(uid)

    async def run(self) -> None:
        """Patch due batches until cancelled."""
        semaphore = asyncio.Semaphore(CONCURRENT_PATCHES)

        async def one(uid: str) -> None:
            async with semaphore:
                await self.patch(uid)

        while True:
            ready, wait = self._coalescer.due()
            if ready:
                for uid in ready:
                    self._coalescer.taken(uid)
                await asyncio.gather(*(one(uid) for uid in ready))
                continue
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    async def patch(self, uid: str) -> None:
        """Build the status of `uid` from the database and patch it (errors are logged)."""
        started = time.perf_counter()
        callback_time = self._callback_times.pop(uid, None)
        try:
            snap = await reads.snapshot(self._db, uid)
            if snap is None:
                self._forget(uid)
                return
            key = (snap.version, snap.generation)
            if self._patched_version.get(uid) == key:
                return
            ref = BatchRef(snap.namespace, snap.name, uid)
            previous = self._conditions.get(uid)
            if previous is None:
                current = await self._kube.read_status(ref)
                if current is None:
                    self._metrics.status_patches.labels("gone").inc()
                    self._forget(uid)
                    return
                previous = _conditions_of(current)
            status = build_status(snap, previous, now=datetime.now(UTC))
            if not await self._kube.patch_status(ref, status_patch(status)):
                self._metrics.status_patches.labels("gone").inc()
                self._forget(uid)
                return
            self._conditions[uid] = status.conditions
            self._patched_version[uid] = key
            self._metrics.status_patches.labels("ok").inc()
            if callback_time is not None:
                self._metrics.callback_to_status.observe(time.monotonic() - callback_time)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.status_patches.labels("error").inc()
            log.warning("status patch failed; retrying", batch_uid=uid, error=repr(exc))
            if callback_time is not None:
                self._callback_times.setdefault(uid, callback_time)
            self.mark(uid)
        finally:
            self._metrics.reconcile_duration.labels("status").observe(time.perf_counter() - started)

    def _forget(self, uid: str) -> None:
        self._coalescer.forget(uid)
        self._conditions.pop(uid, None)
        self._patched_version.pop(uid, None)
        self._callback_times.pop(uid, None)


def _conditions_of(status: Mapping[str, object]) -> list[Condition]:
    raw = status.get("conditions")
    if not isinstance(raw, list):
        return []
    found: list[Condition] = []
    for item in raw:
        try:
            found.append(Condition.model_validate(item))
        except ValueError:
            continue
    return found
