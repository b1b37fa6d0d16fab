"""The batch engine: moves each batch forward from its PostgreSQL state.

`wake(uid)` queues a batch; a few worker tasks take batches off the queue and `advance` them,
one step at a time per batch (a per-batch lock). A step:

1. under the batch row lock: create retries for failed comparisons (or drop them once the cost
   limit is reached); when the round is settled, fit Bradley-Terry, store the scores, then
   either insert the next round's pairs or move to SCORING;
2. send the batch's PENDING pairs to the provider API (bulk, in chunks), then mark them
   SUBMITTED, or FAILED when refused (retry rules apply); when the provider API is down or its
   queue is full the pairs stay PENDING and the batch is woken again later;
3. SCORING: a final fit, then COMPLETED (or FAILED when the success rate is too low);
4. once finished: write the results ConfigMap and publish the completion event (each once).

Nothing here is per-resource kopf state: a restarted operator continues from the database.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from cj_operator import results as results_mod
from cj_operator.comparison_requests import build_request
from cj_operator.db import repository as repo
from cj_operator.db.models import Batch
from cj_operator.db.session import Database
from cj_operator.k8s_io import BatchRef, KubeApi
from cj_operator.metrics import OperatorMetrics
from cj_operator.planning import (
    REASON_LOW_SUCCESS_RATE,
    REASON_TIMED_OUT,
    NextRound,
    RoundState,
    Stop,
    decide_round_end,
    final_verdict,
)
from cj_operator.provider_client import (
    ProviderApi,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from cj_operator.scoring.bradley_terry import DEFAULT_ALPHA, BradleyTerryFit, fit_bradley_terry
from cj_operator.scoring.stopping import max_score_change
from cj_operator.settings import OperatorSettings
from common_core import BatchStateEnum, CJAssessmentCompletedV1, LLMErrorCode

log = structlog.get_logger("cj_operator.engine")

WORKERS = 4
"""Batches advanced at the same time (each batch one step at a time)."""

DEFER_ERRORS = frozenset({LLMErrorCode.QUEUE_FULL.value})
"""Refusals that say "not now" rather than "not this request": the pair is sent again later."""


class CompletionPublisher(Protocol):
    """Where completion events go (`cj_operator.kafka_io.EventPublisher` in the process)."""

    async def publish_completion(self, topic: str, event: CJAssessmentCompletedV1) -> None:
        """Publish one batch's completion event (raises when Kafka does not take it)."""
        ...


@dataclass(frozen=True)
class StepResult:
    """What the decision transaction left to do outside the lock."""

    send: bool = False
    finished: bool = False
    scoring: bool = False
    event: tuple[str, str, str] | None = None


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
        self._provider = provider
        self._kube = kube
        self._publisher = publisher
        self._metrics = metrics
        self._on_change = on_change
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._retry_attempts: dict[str, int] = {}
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

    def _backoff(self, uid: str, hint: float | None) -> float:
        attempt = self._retry_attempts.get(uid, 0) + 1
        self._retry_attempts[uid] = attempt
        if hint is not None:
            return min(max(hint, 1.0), 300.0)
        return self._rng.uniform(0.5, min(60.0, 2.0**attempt))

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
        async with self._locks.setdefault(uid, asyncio.Lock()):
            await action(uid)

    # --- one step -----------------------------------------------------------------------

    async def advance(self, uid: str) -> None:
        """One step of batch `uid` (module docstring); safe to call at any time."""
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            structlog.contextvars.bind_contextvars(batch_uid=uid)
            started = time.perf_counter()
            try:
                result = await self._decide(uid)
                if result.scoring:
                    result = await self._score(uid)
                if result.event is not None:
                    await self._post_event(uid, *result.event)
                if result.send:
                    await self._send(uid)
                if result.finished:
                    await self.followups(uid)
            finally:
                self._metrics.reconcile_duration.labels("advance").observe(
                    time.perf_counter() - started
                )
                structlog.contextvars.unbind_contextvars("batch_uid")
                self._on_change(uid)

    async def _fit(self, n_items: int, outcomes: list[tuple[int, int]]) -> BradleyTerryFit | None:
        if not outcomes or n_items < 2:
            return None
        alpha = self._settings.fit_alpha or DEFAULT_ALPHA
        started = time.perf_counter()
        fit = await asyncio.to_thread(fit_bradley_terry, n_items, outcomes, alpha)
        self._metrics.fit_duration.observe(time.perf_counter() - started)
        return fit

    async def _decide(self, uid: str) -> StepResult:
        async with self._db.sessions.begin() as session:
            batch = await repo.lock_batch(session, uid)
            if batch is None or batch.deleted_at is not None:
                return StepResult()
            if batch.state.is_terminal:
                return StepResult(finished=True)
            if batch.state == BatchStateEnum.INITIALIZING:
                return StepResult()
            if batch.state == BatchStateEnum.SCORING:
                return StepResult(scoring=True)
            if batch.suspended:
                return StepResult()
            cost_limited = batch.max_cost_usd is not None and batch.cost_usd >= batch.max_cost_usd
            if cost_limited:
                await repo.drop_retries(session, batch)
            else:
                await repo.create_retries(session, batch)
            if await repo.count_open(session, uid) > 0:
                return StepResult(send=True)

            spec = repo.batch_spec(batch)
            ledger = await repo.pair_ledger(session, uid)
            previous = await repo.previous_scores(session, uid, batch.essays_count)
            fit = await self._fit(batch.essays_count, ledger.outcomes)
            if fit is not None:
                batch.max_score_change = max_score_change(previous, fit.scores)
                await repo.write_scores(session, batch, fit, ledger)
            decision = decide_round_end(
                RoundState(
                    n_items=batch.essays_count,
                    round=batch.round,
                    budget=batch.budget,
                    history=ledger.history,
                    outcomes=ledger.outcomes,
                    final_failures=ledger.final_failures,
                    previous_scores=previous,
                    fit=fit,
                    cost_usd=batch.cost_usd,
                    max_cost_usd=batch.max_cost_usd,
                    min_success_rate=batch.min_success_rate,
                    stability_threshold=spec.stopping.score_stability_threshold,
                    min_results_for_stability=spec.stopping.min_results_for_stability,
                    reliability_target=spec.stopping.reliability_target,
                )
            )
            if isinstance(decision, NextRound):
                n = await repo.insert_round(session, batch, decision.round, decision.pairs)
                log.info("round planned", round=decision.round, pairs=n)
                return StepResult(
                    send=True,
                    event=(
                        "Normal",
                        "RoundPlanned",
                        f"Round {decision.round}: {n} comparisons to submit. {decision.message}",
                    ),
                )
            assert isinstance(decision, Stop)
            batch.state = BatchStateEnum.SCORING
            batch.reason = decision.reason
            batch.message = decision.message
            log.info("batch stops submitting", reason=decision.reason, message=decision.message)
            return StepResult(scoring=True)

    async def _score(self, uid: str) -> StepResult:
        """SCORING -> COMPLETED or FAILED, with a final fit."""
        async with self._db.sessions.begin() as session:
            batch = await repo.lock_batch(session, uid)
            if batch is None or batch.state != BatchStateEnum.SCORING:
                return StepResult(finished=batch is not None and batch.state.is_terminal)
            ledger = await repo.pair_ledger(session, uid)
            previous = await repo.previous_scores(session, uid, batch.essays_count)
            fit = await self._fit(batch.essays_count, ledger.outcomes)
            if fit is not None:
                if previous is not None:
                    batch.max_score_change = max_score_change(previous, fit.scores)
                await repo.write_scores(session, batch, fit, ledger)
            if batch.reason == REASON_LOW_SUCCESS_RATE:
                verdict = Stop(batch.reason, batch.message, failed=True)
            else:
                verdict = final_verdict(
                    batch.reason,
                    batch.message,
                    len(ledger.outcomes),
                    ledger.final_failures,
                    batch.min_success_rate,
                )
            state = BatchStateEnum.FAILED if verdict.failed else BatchStateEnum.COMPLETED
            await repo.finish(session, batch, state, verdict.reason, verdict.message)
            log.info("batch finished", state=state.value, reason=verdict.reason)
            kind = "Warning" if verdict.failed else "Normal"
            reason = "Failed" if verdict.failed else "Completed"
            return StepResult(
                finished=True, event=(kind, reason, f"{verdict.reason}: {verdict.message}")
            )

    # --- submission ---------------------------------------------------------------------

    async def _send(self, uid: str) -> None:
        async with self._db.sessions() as session:
            batch = await session.get(Batch, uid)
            if batch is None or batch.suspended or batch.state.is_terminal:
                return
            spec = repo.batch_spec(batch)
        user_prompt = spec.assignment.user_prompt()
        while True:
            async with self._db.sessions() as session:
                pairs = await repo.pending_pairs(session, uid, self._settings.submit_chunk_size)
            if not pairs:
                self._retry_attempts.pop(uid, None)
                return
            requests = [
                build_request(
                    p,
                    batch_uid=uid,
                    user_prompt=user_prompt,
                    judge=spec.judge,
                    callback_topic=self._settings.callback_topic,
                )
                for p in pairs
            ]
            try:
                answer = await self._provider.submit(requests)
            except ProviderUnavailableError as exc:
                self._metrics.provider_errors.labels("unavailable").inc()
                self._metrics.comparisons_submitted.labels("deferred").inc(len(pairs))
                delay = self._backoff(uid, exc.retry_after)
                log.warning("provider API unavailable; will resend", error=str(exc), delay=delay)
                if self._retry_attempts.get(uid) == 1:
                    await self._post_event(uid, "Warning", "ProviderUnavailable", str(exc))
                self.wake_later(uid, delay)
                return
            except ProviderRejectedError as exc:
                self._metrics.provider_errors.labels("rejected").inc()
                refused = [
                    repo.Refusal(p.pair_id, exc.detail.error_code.value, exc.detail.message)
                    for p in pairs
                ]
                await repo.record_submission(self._db, uid, [], refused)
                self._metrics.comparisons_submitted.labels("refused").inc(len(pairs))
                await self._post_event(uid, "Warning", "ComparisonsRefused", str(exc))
                self.wake(uid)
                return
            queued: list[int] = []
            refused_items: list[repo.Refusal] = []
            deferred = 0
            for pair, outcome in zip(pairs, answer.outcomes, strict=True):
                if outcome.queued is not None:
                    queued.append(pair.pair_id)
                elif outcome.error is not None and outcome.error.error_code.value in DEFER_ERRORS:
                    deferred += 1
                elif outcome.error is not None:
                    refused_items.append(
                        repo.Refusal(
                            pair.pair_id, outcome.error.error_code.value, outcome.error.message
                        )
                    )
            retries = await repo.record_submission(self._db, uid, queued, refused_items)
            self._metrics.comparisons_submitted.labels("queued").inc(len(queued))
            self._metrics.comparisons_submitted.labels("refused").inc(len(refused_items))
            self._metrics.comparisons_submitted.labels("deferred").inc(deferred)
            if refused_items:
                log.warning(
                    "comparisons refused by the provider API",
                    refused=len(refused_items),
                    first=refused_items[0].message,
                    retries=retries,
                )
                self.wake(uid)
            if deferred:
                delay = self._backoff(uid, None)
                log.info("provider queue full; resending later", deferred=deferred, delay=delay)
                self.wake_later(uid, delay)
                return
            self._on_change(uid)

    # --- finishing ----------------------------------------------------------------------

    async def timeout(self, uid: str) -> bool:
        """Apply a batch's timeout: score it when enough succeeded, else fail it.

        "Enough" is minSuccessRate of the comparisons asked so far. Returns True when the
        batch changed.
        """
        async with self._db.sessions.begin() as session:
            batch = await repo.lock_batch(session, uid)
            if batch is None or batch.state.is_terminal or batch.deleted_at is not None:
                return False
            if batch.state == BatchStateEnum.SCORING:
                return False
            ledger = await repo.pair_ledger(session, uid)
            asked = len(ledger.history)
            succeeded = len(ledger.outcomes)
            rate = succeeded / asked if asked else 0.0
            allowed = batch.deadline_at - batch.created_at if batch.deadline_at else None
            message = (
                f"Timed out after {allowed or 'its deadline'} with {succeeded} of {asked} "
                f"comparisons answered ({rate:.0%})."
            )
            if asked and succeeded and rate >= batch.min_success_rate:
                batch.state = BatchStateEnum.SCORING
                batch.reason, batch.message = REASON_TIMED_OUT, message + " Scored what it had."
            else:
                await repo.finish(
                    session,
                    batch,
                    BatchStateEnum.FAILED,
                    REASON_TIMED_OUT,
                    message + f" Below minSuccessRate {batch.min_success_rate:.0%}.",
                )
        log.warning("batch timed out", batch_uid=uid, message=message)
        self.wake(uid)
        return True

    async def followups(self, uid: str) -> None:
        """For a finished batch: results ConfigMap and completion event, each once."""
        finished = await repo.finished_batch(self._db, uid)
        if finished is None:
            return
        async with self._db.sessions() as session:
            batch = await session.get(Batch, uid)
            if batch is None:
                return
            need_results = batch.results_written_at is None
            need_event = batch.completion_published_at is None
            deleted = batch.deleted_at is not None
        if not (need_results or need_event):
            return
        rows = await repo.result_rows(self._db, uid)
        if need_results:
            if not deleted:
                ref = BatchRef(finished.namespace, finished.name, uid)
                await self._kube.write_results(
                    ref,
                    results_mod.results_config_map_name(finished.name),
                    {
                        "results.csv": results_mod.results_csv(rows),
                        "results.json": results_mod.results_json(rows),
                    },
                )
            await repo.mark_done(self._db, uid, results=True)
        if need_event:
            event = results_mod.completion_event(finished, rows)
            await self._publisher.publish_completion(self._settings.completion_topic, event)
            await repo.mark_done(self._db, uid, event=True)
            self._metrics.completion_events.labels(finished.state.value).inc()
            log.info("completion event published", batch_uid=uid, state=finished.state.value)
        self._on_change(uid)

    async def _post_event(self, uid: str, kind: str, reason: str, message: str) -> None:
        identity = await repo.batch_identity(self._db, uid)
        if identity is None:
            return
        try:
            await self._kube.post_event(
                BatchRef(identity[0], identity[1], uid), kind, reason, message
            )
        except Exception as exc:  # an Event is informational: never fail a step for it
            log.warning("could not post event", reason=reason, error=str(exc))
