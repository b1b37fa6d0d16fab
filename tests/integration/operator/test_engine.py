"""The batch engine on the real PostgreSQL, with the provider API, Kafka and Kubernetes faked.

The fakes stand for this project's own provider API and the two output sinks; the database is
real. Each test drives `advance` step by step and answers comparisons the way workers would
(through `record_callbacks`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from cj_operator.db import batches
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.models import ComparisonPair, PairStatus
from cj_operator.db.session import Database
from cj_operator.engine import BatchEngine
from cj_operator.k8s_io import BatchRef
from cj_operator.limits import resolve_limits
from cj_operator.metrics import OperatorMetrics
from cj_operator.provider_client import ProviderUnavailableError
from cj_operator.settings import OperatorSettings
from cj_operator.spec import CJBatchSpec
from common_core import (
    BatchCancelResponse,
    BatchStateEnum,
    BulkItemOutcome,
    CJAssessmentCompletedV1,
    EssayComparisonWinner,
    LLMComparisonBulkResponse,
    LLMComparisonRequest,
    LLMErrorCode,
    LLMQueuedResponse,
    QueuePriority,
    metadata_keys,
)
from common_core.errors import ErrorDetail
from tests.integration.operator.batches import batch_row, migrated
from tests.support.factories import failure, success


class FakeProvider:
    """Queues everything unless told to refuse items or to be down."""

    def __init__(self) -> None:
        self.requests: list[LLMComparisonRequest] = []
        self.answered: set[uuid.UUID] = set()
        self.refuse: dict[int, LLMErrorCode] = {}
        self.down = False
        self.cancelled: list[str] = []

    async def submit(self, requests: Sequence[LLMComparisonRequest]) -> LLMComparisonBulkResponse:
        if self.down:
            raise ProviderUnavailableError("provider API unreachable", retry_after=1.0)
        outcomes = []
        for i, r in enumerate(requests):
            if i in self.refuse:
                error = ErrorDetail(
                    error_code=self.refuse[i], message="refused", service="api", operation="bulk"
                )
                outcomes.append(
                    BulkItemOutcome(index=i, correlation_id=r.correlation_id, error=error)
                )
                continue
            self.requests.append(r)
            queued = LLMQueuedResponse(
                queue_id=uuid.uuid4(),
                correlation_id=r.correlation_id,
                queued_at=datetime.now(UTC),
                estimated_wait_seconds=0.0,
                priority=QueuePriority.NORMAL,
            )
            outcomes.append(
                BulkItemOutcome(index=i, correlation_id=r.correlation_id, queued=queued)
            )
        self.refuse = {}
        return LLMComparisonBulkResponse(outcomes=outcomes)

    async def cancel(self, batch_uid: str) -> BatchCancelResponse:
        self.cancelled.append(batch_uid)
        return BatchCancelResponse(
            batch_id=batch_uid, cancelled_at=datetime.now(UTC), ttl_seconds=60
        )

    def unanswered(self) -> list[LLMComparisonRequest]:
        return [r for r in self.requests if r.correlation_id not in self.answered]


class FakeKube:
    def __init__(self) -> None:
        self.results: list[tuple[BatchRef, str, dict[str, str]]] = []
        self.events: list[tuple[str, str]] = []

    async def patch_status(self, ref: BatchRef, body: dict[str, Any]) -> bool:
        return True

    async def read_status(self, ref: BatchRef) -> dict[str, Any] | None:
        return {}

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    async def write_results(self, ref: BatchRef, name: str, data: dict[str, str]) -> None:
        self.results.append((ref, name, data))

    async def post_event(self, ref: BatchRef, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason))

    async def read_peering(self, name: str) -> dict[str, Any] | None:
        return None


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[CJAssessmentCompletedV1] = []

    async def publish_completion(self, topic: str, event: CJAssessmentCompletedV1) -> None:
        self.events.append(event)


class Harness:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.provider = FakeProvider()
        self.kube = FakeKube()
        self.publisher = FakePublisher()
        self.metrics = OperatorMetrics()
        self.settings = OperatorSettings(LLM_PROVIDER_CALLBACK_TOPIC="huleedu.test.callbacks")
        self.engine = BatchEngine(
            settings=self.settings,
            db=db,
            provider=self.provider,
            kube=self.kube,
            publisher=self.publisher,
            metrics=self.metrics,
            on_change=lambda uid: None,
        )

    async def batch(self, n: int = 6, **spec: Any) -> str:
        uid = str(uuid.uuid4())
        model = CJBatchSpec.model_validate(
            {
                "essays": [
                    {"id": f"e{i}", "text": "word " * (3 + 4 * i), "metadata": {"n": i}}
                    for i in range(max(n, 2))
                ],
                "assignment": {"prompt": "Write."},
                "judge": {"provider": "mock"},
                **spec,
            }
        )
        await batches.register_batch(
            self.db,
            uid=uid,
            namespace="ns",
            name=f"b{uid[:6]}",
            generation=1,
            spec=model,
            limits=resolve_limits(model, 3600.0, 0.8),
        )
        assert model.essays is not None
        await batches.store_essays(self.db, uid, model.essays[:n])
        return uid

    async def answer(
        self,
        cost: float = 0.0,
        fail: LLMErrorCode | None = None,
        *,
        retry_after: float | None = None,
        backoff: float = 0.0,
    ) -> int:
        """Answer every open request like a worker would: the longer essay wins (or every
        request fails with `fail`, saying `retry_after`; retries wait `backoff` seconds)."""
        pending = self.provider.unanswered()
        results = []
        for r in pending:
            self.provider.answered.add(r.correlation_id)
            if fail is not None:
                error = failure(r.correlation_id, fail)
                if retry_after is not None:
                    assert error.error_detail is not None
                    detail = error.error_detail.model_copy(
                        update={"details": {"retry_after_seconds": retry_after}}
                    )
                    error = error.model_copy(update={"error_detail": detail})
                results.append(error)
                continue
            winner = (
                EssayComparisonWinner.ESSAY_A
                if len(r.essay_a) >= len(r.essay_b)
                else EssayComparisonWinner.ESSAY_B
            )
            results.append(success(r.correlation_id, winner, cost=cost))
        await PostgresCallbackStore(self.db, retry_backoff_seconds=backoff).record(results)
        return len(results)

    async def pairs(self, uid: str) -> list[ComparisonPair]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(ComparisonPair)
                .where(ComparisonPair.batch_uid == uid)
                .order_by(ComparisonPair.id)
            )
            return list(rows.scalars())

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels or None) or 0.0


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    db = await migrated(database_url)
    yield Harness(db)
    await db.dispose()


async def test_runs_to_completion_and_finishes_once(harness: Harness) -> None:
    uid = await harness.batch(6, comparisons={"targetPerEssay": 5})
    for _ in range(20):
        await harness.engine.advance(uid)
        if not await harness.answer():
            break
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.COMPLETED, (batch.reason, batch.message)
    assert (batch.submitted, batch.completed, batch.failed) == (15, 15, 0)
    assert batch.budget == 15
    first = harness.provider.requests[0]
    assert first.callback_topic == "huleedu.test.callbacks"
    assert first.metadata[metadata_keys.BATCH_ID] == uid
    assert first.metadata[metadata_keys.ATTEMPT] == 1
    assert {metadata_keys.ESSAY_A_METADATA, metadata_keys.ROUND} <= set(first.metadata)
    # The follow-ups happen once however often the batch is advanced.
    await harness.engine.advance(uid)
    await harness.engine.followups(uid)
    assert len(harness.publisher.events) == 1
    event = harness.publisher.events[0]
    assert [r.essay_id for r in event.rankings] == [f"e{i}" for i in range(5, -1, -1)]
    assert len(harness.kube.results) == 1
    ref, name, data = harness.kube.results[0]
    assert (ref.uid, name) == (uid, f"{batch.name}-results")
    assert data["results.csv"].splitlines()[1].startswith("e5,")
    reasons = [reason for _, reason in harness.kube.events]
    assert "RoundPlanned" in reasons and reasons[-1] == "Completed"
    # A finished batch whose follow-ups are written keeps no step lock in the engine.
    assert len(harness.engine.locks) == 0


async def test_refusals_fail_or_defer_items(harness: Harness) -> None:
    uid = await harness.batch(8)
    harness.provider.refuse = {0: LLMErrorCode.CONTENT_TOO_LONG, 1: LLMErrorCode.QUEUE_FULL}
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    assert [p.status for p in pairs] == [
        PairStatus.FAILED,
        PairStatus.PENDING,
        PairStatus.SUBMITTED,
        PairStatus.SUBMITTED,
    ]
    assert pairs[0].error_code == LLMErrorCode.CONTENT_TOO_LONG.value
    assert pairs[0].needs_retry is False
    batch = await batch_row(harness.db, uid)
    assert (batch.submitted, batch.failed) == (4, 1)
    assert harness.metric("cj_operator_comparisons_submitted_total", outcome="deferred") == 1
    await asyncio.sleep(harness.engine.send_backoff_left(uid))
    await harness.engine.advance(uid)  # the queue has room again
    assert (await harness.pairs(uid))[1].status == PairStatus.SUBMITTED


async def test_an_unreachable_provider_keeps_pairs_pending(harness: Harness) -> None:
    uid = await harness.batch(6)
    harness.provider.down = True
    await harness.engine.advance(uid)
    assert {p.status for p in await harness.pairs(uid)} == {PairStatus.PENDING}
    assert harness.metric("cj_operator_provider_api_errors_total", kind="unavailable") == 1
    assert ("Warning", "ProviderUnavailable") in harness.kube.events
    harness.provider.down = False
    # Woken within its backoff (as a poll of callbacks does): it sends nothing yet.
    assert harness.engine.send_backoff_left(uid) > 0.5
    await harness.engine.advance(uid)
    assert {p.status for p in await harness.pairs(uid)} == {PairStatus.PENDING}
    assert harness.provider.requests == []
    await asyncio.sleep(harness.engine.send_backoff_left(uid))
    await harness.engine.advance(uid)
    assert {p.status for p in await harness.pairs(uid)} == {PairStatus.SUBMITTED}
    assert (await batch_row(harness.db, uid)).submitted == 3  # counted once, sent twice
    assert harness.engine.send_backoff_left(uid) == 0


async def test_failed_comparisons_are_retried_with_a_new_correlation_id(harness: Harness) -> None:
    uid = await harness.batch(4, limits={"maxRetries": 1}, comparisons={"maxTotal": 2})
    await harness.engine.advance(uid)
    await harness.answer(fail=LLMErrorCode.PROVIDER_TIMEOUT)
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    assert len(pairs) == 4
    originals, retries = pairs[:2], pairs[2:]
    for old, new in zip(originals, retries, strict=True):
        assert (new.attempt, new.retry_of_id, new.round) == (2, old.id, old.round)
        assert new.correlation_id != old.correlation_id
        assert (new.essay_a_idx, new.essay_b_idx) == (old.essay_a_idx, old.essay_b_idx)
        assert old.retried and new.status == PairStatus.SUBMITTED
    await harness.answer(fail=LLMErrorCode.PROVIDER_TIMEOUT)  # the retries fail too: final
    await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.FAILED
    assert batch.reason == "LowSuccessRate"
    assert (batch.submitted, batch.completed, batch.failed) == (4, 0, 4)


@pytest.mark.parametrize(
    ("retry_after", "backoff", "wait"),
    [(None, 1.0, 1.0), (1.5, 0.0, 1.5)],
    ids=["backoff", "provider-retry-after"],
)
async def test_a_retry_waits_for_its_backoff_or_the_providers_retry_after(
    harness: Harness, retry_after: float | None, backoff: float, wait: float
) -> None:
    uid = await harness.batch(4, limits={"maxRetries": 1}, comparisons={"maxTotal": 2})
    await harness.engine.advance(uid)
    await harness.answer(
        fail=LLMErrorCode.PROVIDER_RATE_LIMIT, retry_after=retry_after, backoff=backoff
    )
    await harness.engine.advance(uid)
    # Not yet due: no retry row, and the batch has not moved on to a round-end decision.
    assert len(await harness.pairs(uid)) == 2
    batch = await batch_row(harness.db, uid)
    assert (batch.state, batch.round) == (BatchStateEnum.WAITING_CALLBACKS, 1)
    await asyncio.sleep(wait + 0.2)
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    assert [p.attempt for p in pairs] == [1, 1, 2, 2]
    assert all(p.status == PairStatus.SUBMITTED for p in pairs[2:])


async def test_cost_limit_stops_submitting(harness: Harness) -> None:
    uid = await harness.batch(6, limits={"maxCostUSD": 2.0})
    await harness.engine.advance(uid)
    await harness.answer(cost=1.0)
    await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.COMPLETED
    assert batch.reason == "CostLimitExceeded"
    assert batch.submitted == 3 and batch.cost_usd == 3.0
    assert harness.publisher.events[0].cost_usd == 3.0


async def test_suspended_batch_sends_nothing(harness: Harness) -> None:
    uid = await harness.batch(6, suspend=True)
    await harness.engine.advance(uid)
    assert harness.provider.requests == [] and await harness.pairs(uid) == []


async def test_fewer_than_two_essays_complete_at_once(harness: Harness) -> None:
    uid = await harness.batch(1)
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.COMPLETED
    assert batch.reason == "InsufficientEssays"
    await harness.engine.advance(uid)
    assert harness.provider.requests == []
    event = harness.publisher.events[0]
    assert (event.state, event.reason, event.essays, event.rankings) == (
        BatchStateEnum.COMPLETED,
        "InsufficientEssays",
        1,
        [],
    )


async def test_timeout_scores_a_batch_with_enough_answers(harness: Harness) -> None:
    uid = await harness.batch(6)
    await harness.engine.advance(uid)
    await harness.answer()
    assert await harness.engine.timeout(uid)
    await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert (batch.state, batch.reason) == (BatchStateEnum.COMPLETED, "TimedOut")
    assert "3 of 3 comparisons answered (100%)" in batch.message


async def test_phase_gauge_counts_batches_by_state(harness: Harness) -> None:
    from cj_operator.monitor import BatchMonitor

    monitor = BatchMonitor(
        db=harness.db,
        engine=harness.engine,
        metrics=harness.metrics,
        interval_seconds=300.0,
        callback_timeout_seconds=600.0,
    )
    waiting = await harness.batch(6)
    await harness.engine.advance(waiting)
    await harness.batch(1)  # completes at once: InsufficientEssays
    await harness.batch(4)  # stored, not yet advanced
    await monitor.refresh_phase_gauge()
    counts = {
        state: harness.metric("cj_operator_batches", phase=state.value) for state in BatchStateEnum
    }
    assert counts[BatchStateEnum.WAITING_CALLBACKS] == 1
    assert counts[BatchStateEnum.COMPLETED] == 1
    assert sum(counts.values()) == 3
