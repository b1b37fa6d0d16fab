"""The batch engine's scheduler: a queue of batches to advance, one lock per batch, backoff.

`wake(uid)` queues a batch; a few worker tasks take batches off the queue and `advance` them,
one step at a time per batch (a per-batch lock, dropped once the batch owes nothing more). A
step (`cj_operator.engine.steps`, `submission`, `followups`):

1. decide: retries, then when the round is settled a fit and the next round or SCORING
   (with the judges' prices from `prices.PriceCache`, to reserve each comparison's cost);
2. send the batch's PENDING pairs to the provider API; when it is down or full the batch is
   woken again after a backoff (the server's Retry-After when given), and sends nothing
   before then, whatever else wakes it;
3. SCORING: a final fit, then COMPLETED (or FAILED when the success rate is too low);
4. once finished: the results and comparisons ConfigMaps and the completion event (each
   once).

Nothing here is per-resource kopf state: a restarted operator continues from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from cj_operator.db import reads
from cj_operator.db.rounds import PairLedger
from cj_operator.db.session import Database
from cj_operator.engine import steps
from cj_operator.engine.followups import CompletionPublisher, write_followups
from cj_operator.engine.prices import PriceCache
from cj_operator.engine.submission import SendOutcome, Submitter
from cj_operator.k8s_io import BatchRef, KubeApi
from cj_operator.lifecycle.reasons import Reason
from cj_operator.metrics import OperatorMetrics
from cj_operator.provider_client import ProviderApi
from cj_operator.scoring.bradley_terry import DEFAULT_ALPHA, fit_bradley_terry
from cj_operator.scoring.diagnostics import diagnose
from cj_operator.settings import OperatorSettings
from cj_plumbing.backoff import clamp_retry_after, exponential_backoff

log = structlog.get_logger("cj_operator.engine")

WORKERS = 4
"""Batches advanced at the same time (each batch one step at a time)."""
_SEND_AFTER_TOLERANCE = 0.01
"""Seconds of a send backoff ignored: the loop may run a timer a clock tick early."""


class StepLocks:
    """One asyncio.Lock per batch; a lock is dropped once its batch is settled and nobody
    holds or waits for it, so a long-running operator keeps no lock per finished batch."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._settled: set[str] = set()

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, uid: str) -> AsyncIterator[None]:
        """Hold the batch's lock for the block."""
        lock = self._locks.setdefault(uid, asyncio.Lock())
        self._users[uid] = self._users.get(uid, 0) + 1
        try:
            async with lock:
                self._settled.discard(uid)
                yield
        finally:
            self._users[uid] -= 1
            if self._users[uid] == 0:
                del self._users[uid]
                if uid in self._settled:
                    self._settled.discard(uid)
                    self._locks.pop(uid, None)

    def settle(self, uid: str) -> None:
        """The batch owes nothing more: drop its lock when the last holder leaves."""
        self._settled.add(uid)


class BatchEngine:
    """Advances batches; see the module docstring."""

    def __init__(
        self,
        *,
        settings: OperatorSettings,
        db: Database,
        provider: ProviderApi,
        kube: KubeApi,
        publisher: CompletionPublisher,
        metrics: OperatorMetrics,
        on_change: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._kube = kube
        self._publisher = publisher
        self._metrics = metrics
        self._on_change = on_change
        self._submitter = Submitter(
            db=db,
            provider=provider,
            metrics=metrics,
            callback_topic=settings.callback_topic,
            chunk_size=settings.submit_chunk_size,
            retry_backoff_seconds=settings.retry_backoff_seconds,
            on_change=on_change,
        )
        self._prices = PriceCache(provider)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self.locks = StepLocks()
        self._retry_attempts: dict[str, int] = {}
        self._send_after: dict[str, float] = {}
        """Loop time before which a deferred batch sends nothing, whatever wakes it."""
        self._rng = random.Random()

    # --- scheduling ---------------------------------------------------------------------

    def wake(self, uid: str) -> None:
        """Queue `uid` for a step (once, however often it is woken before it runs)."""
        if uid not in self._queued:
            self._queued.add(uid)
            self._queue.put_nowait(uid)

    def wake_later(self, uid: str, delay: float) -> None:
        """Queue `uid` after `delay` seconds."""
        asyncio.get_running_loop().call_later(max(0.0, delay), self.wake, uid)

    def send_backoff_left(self, uid: str) -> float:
        """Seconds until batch `uid` may submit again after a deferred submission (0: now).

        A batch whose submission was deferred (provider API down or full) sends nothing
        before its backoff ends, however often a callback or the monitor wakes it meanwhile:
        otherwise every poll of callbacks retried the POST at once, and a provider API
        restart of 2 s opened the circuit breaker for its whole reset time (the fault suite's
        `api-mid-submission` case)."""
        left = self._send_after.get(uid, 0.0) - asyncio.get_running_loop().time()
        return left if left > _SEND_AFTER_TOLERANCE else 0.0

    def _backoff(self, uid: str, hint: float | None) -> float:
        """Seconds until the batch's next try: the server's hint clamped to [1, 300], else
        uniform in [0.5, min(60, 2^attempt)] (full jitter)."""
        attempt = self._retry_attempts.get(uid, 0) + 1
        self._retry_attempts[uid] = attempt
        if hint is not None:
            return clamp_retry_after(hint, floor=1.0, cap=300.0)
        return exponential_backoff(attempt, base=2.0, cap=60.0, floor=0.5, rng=self._rng)

    async def run(self) -> None:
        """Run the worker tasks until cancelled."""
        async with asyncio.TaskGroup() as group:
            for i in range(WORKERS):
                group.create_task(self._worker(), name=f"cj-engine-{i}")

    async def _worker(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            try:
                await self.advance(uid)
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = self._backoff(uid, None)
                log.exception("batch step failed; retrying", batch_uid=uid, delay=delay)
                self.wake_later(uid, delay)

    async def locked(self, uid: str, action: Callable[[str], Awaitable[None]]) -> None:
        """Run `action(uid)` holding the batch's step lock (no step runs meanwhile)."""
        async with self.locks.hold(uid):
            await action(uid)

    # --- one step -----------------------------------------------------------------------

    async def advance(self, uid: str) -> None:
        """One step of batch `uid` (module docstring); safe to call at any time."""
        async with self.locks.hold(uid):
            structlog.contextvars.bind_contextvars(batch_uid=uid)
            started = time.perf_counter()
            try:
                result = await steps.decide(self._db, uid, self._fit, await self._prices.current())
                if result.scoring:
                    result = await steps.score(self._db, uid, self._fit)
                for event in result.events:
                    await self._post_event(uid, event)
                if result.wake_after is not None:
                    self.wake_later(uid, result.wake_after)
                if result.send and not self.send_backoff_left(uid):
                    await self._after_send(uid, await self._submitter.send(uid))
                if result.finished and await self._followups(uid):
                    self._settle(uid)
                if result.gone:
                    self._settle(uid)
            finally:
                self._metrics.reconcile_duration.labels("advance").observe(
                    time.perf_counter() - started
                )
                structlog.contextvars.unbind_contextvars("batch_uid")
                self._on_change(uid)

    def _settle(self, uid: str) -> None:
        self.locks.settle(uid)
        self._retry_attempts.pop(uid, None)
        self._send_after.pop(uid, None)

    async def _after_send(self, uid: str, outcome: SendOutcome) -> None:
        """Wake the batch again as the send asks: now (retries due) or after a backoff."""
        if outcome.refused is not None:
            refused = steps.KubeEvent("Warning", Reason.COMPARISONS_REFUSED, outcome.refused)
            await self._post_event(uid, refused)
        if outcome.judge_refused is not None:
            judge = steps.KubeEvent("Warning", Reason.JUDGE_REFUSED, outcome.judge_refused)
            await self._post_event(uid, judge)
        if outcome.later:
            delay = self._backoff(uid, outcome.retry_after)
            log.info("submission deferred", delay=delay)
            if outcome.unavailable is not None and self._retry_attempts.get(uid) == 1:
                down = steps.KubeEvent("Warning", Reason.PROVIDER_UNAVAILABLE, outcome.unavailable)
                await self._post_event(uid, down)
            self._send_after[uid] = asyncio.get_running_loop().time() + delay
            self.wake_later(uid, delay)
        else:
            self._send_after.pop(uid, None)
            if outcome.drained:
                self._retry_attempts.pop(uid, None)
        if outcome.again:
            self.wake(uid)

    async def _fit(self, n_items: int, ledger: PairLedger) -> steps.Scored | None:
        """Bradley-Terry fit and diagnostics off the event loop (both O(n^3) at worst)."""
        if not ledger.outcomes or n_items < 2:
            return None
        alpha = self._settings.fit_alpha or DEFAULT_ALPHA
        started = time.perf_counter()
        fit = await asyncio.to_thread(fit_bradley_terry, n_items, ledger.outcomes, alpha)
        self._metrics.fit_duration.observe(time.perf_counter() - started)
        diagnostics = await asyncio.to_thread(diagnose, n_items, ledger.judged)
        return steps.Scored(fit, diagnostics)

    # --- finishing ----------------------------------------------------------------------

    async def timeout(self, uid: str) -> bool:
        """Apply a batch's timeout (`steps.apply_timeout`); True when the batch changed."""
        message = await steps.apply_timeout(self._db, uid)
        if message is None:
            return False
        log.warning("batch timed out", batch_uid=uid, message=message)
        self.wake(uid)
        return True

    async def followups(self, uid: str) -> None:
        """For a finished batch: results ConfigMap and completion event, each once."""
        await self._followups(uid)
        self._on_change(uid)

    async def _followups(self, uid: str) -> bool:
        return await write_followups(
            db=self._db,
            kube=self._kube,
            publisher=self._publisher,
            completion_topic=self._settings.completion_topic,
            metrics=self._metrics,
            uid=uid,
            comparisons_max_bytes=self._settings.comparisons_max_bytes,
        )

    async def _post_event(self, uid: str, event: steps.KubeEvent) -> None:
        identity = await reads.batch_identity(self._db, uid)
        if identity is None:
            return
        try:
            await self._kube.post_event(
                BatchRef(identity[0], identity[1], uid), event.kind, event.reason, event.message
            )
        except Exception as exc:  # an Event is informational: never fail a step for it
            log.warning("could not post event", reason=event.reason, error=str(exc))
