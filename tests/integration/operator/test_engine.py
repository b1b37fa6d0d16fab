"""The batch engine on the real PostgreSQL, with the provider API, Kafka and Kubernetes faked.

The fakes stand for this project's own provider API and the two output sinks; the database is
real. Each test drives `advance` step by step and answers comparisons the way workers would
(through `record_callbacks`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from cj_operator.costing import Price, estimate_cost_usd
from cj_operator.db import batches, reads
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.models import ComparisonPair, Essay, PairStatus
from cj_operator.db.session import Database
from cj_operator.engine import BatchEngine
from cj_operator.evidence import parse_comparisons_csv
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
    LLMProviderType,
    LLMQueuedResponse,
    ModelInfo,
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
        self.refuse_details: dict[str, Any] = {}
        self.down = False
        self.cancelled: list[str] = []
        self.model_list: list[ModelInfo] = []
        self.prices_down = False

    async def submit(self, requests: Sequence[LLMComparisonRequest]) -> LLMComparisonBulkResponse:
        if self.down:
            raise ProviderUnavailableError("provider API unreachable", retry_after=1.0)
        outcomes = []
        for i, r in enumerate(requests):
            if i in self.refuse:
                error = ErrorDetail(
                    error_code=self.refuse[i],
                    message="refused",
                    service="api",
                    operation="bulk",
                    details=self.refuse_details,
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

    async def models(self) -> list[ModelInfo]:
        if self.prices_down:
            raise ProviderUnavailableError("provider API unreachable")
        return list(self.model_list)

    def unanswered(self) -> list[LLMComparisonRequest]:
        return [r for r in self.requests if r.correlation_id not in self.answered]


class FakeKube:
    def __init__(self) -> None:
        self.written: list[tuple[BatchRef, str, dict[str, str]]] = []
        self.events: list[tuple[str, str]] = []

    async def patch_status(self, ref: BatchRef, body: dict[str, Any]) -> bool:
        return True

    async def read_status(self, ref: BatchRef) -> dict[str, Any] | None:
        return {}

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    async def write_config_map(self, ref: BatchRef, name: str, data: dict[str, str]) -> None:
        self.written.append((ref, name, data))

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

    async def batch(
        self, n: int = 6, *, anchors: dict[int, float] | None = None, **spec: Any
    ) -> str:
        """A registered batch of `n` essays, e{i} longer (so better) with i; `anchors` gives
        some of them a known grade (metadata.anchorGrade)."""
        uid = str(uuid.uuid4())
        anchors = anchors or {}
        model = CJBatchSpec.model_validate(
            {
                "essays": [
                    {
                        "id": f"e{i}",
                        "text": "word " * (3 + 4 * i),
                        "metadata": {"n": i}
                        | ({"anchorGrade": anchors[i]} if i in anchors else {}),
                    }
                    for i in range(max(n, 2))
                ],
                "assignment": {"prompt": "Write."},
                **({} if "judges" in spec else {"judge": {"provider": "mock"}}),
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
            results.append(success(r.correlation_id, winner, cost=cost, **r.metadata))
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
    assert [name for _, name, _ in harness.kube.written] == [
        f"{batch.name}-results",
        f"{batch.name}-comparisons",
    ]
    ref, _, data = harness.kube.written[0]
    assert ref.uid == uid
    assert data["results.csv"].splitlines()[1].startswith("e5,")
    comparisons = parse_comparisons_csv(harness.kube.written[1][2]["comparisons.csv"], "cm")
    assert len(comparisons) == 15
    assert {c.winner_id for c in comparisons} <= {f"e{i}" for i in range(6)}
    reasons = [reason for _, reason in harness.kube.events]
    assert "RoundPlanned" in reasons and reasons[-1] == "Completed"
    # A finished batch whose follow-ups are written keeps no step lock in the engine.
    assert len(harness.engine.locks) == 0


async def test_anchor_essays_give_every_essay_a_projected_grade(harness: Harness) -> None:
    uid = await harness.batch(
        8, anchors={0: 1, 2: 2, 5: 4, 7: 5}, comparisons={"targetPerEssay": 7}
    )
    for _ in range(30):
        await harness.engine.advance(uid)
        if not await harness.answer():
            break
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.COMPLETED, (batch.reason, batch.message)
    await harness.engine.followups(uid)
    _, _, data = harness.kube.written[0]
    rows = {r["essay_id"]: r for r in json.loads(data["results.json"])}
    assert all(r["projected_grade"] is not None for r in rows.values())
    assert all(r["grade_low"] <= r["projected_grade"] <= r["grade_high"] for r in rows.values())
    # the best essay (e7, an anchor of grade 5) is projected at least as high as the worst
    assert rows["e7"]["projected_grade"] >= rows["e0"]["projected_grade"]
    summary = json.loads(data["summary.json"])
    assert summary["grades"]["anchors"] == 4
    assert summary["grades"]["grades"] == [1.0, 2.0, 4.0, 5.0]
    assert sum(d["essays"] for d in summary["grades"]["distribution"]) == 8
    snap = await reads.snapshot(harness.db, uid)
    assert snap is not None and snap.grades is not None
    assert snap.grades.anchors == 4
    assert sum(g.essays for g in snap.grades.distribution) == 8


async def test_a_panel_asks_each_judge_its_share_and_reports_each_judge(harness: Harness) -> None:
    panel = [{"provider": "mock", "model": "judge-one"}, {"provider": "mock", "model": "judge-two"}]
    uid = await harness.batch(8, judges=panel, comparisons={"targetPerEssay": 6})
    for _ in range(30):
        await harness.engine.advance(uid)
        if not await harness.answer():
            break
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.COMPLETED, (batch.reason, batch.message)
    models = [
        r.llm_config_overrides.model_override
        for r in harness.provider.requests
        if r.llm_config_overrides
    ]
    assert len(models) == len(harness.provider.requests) == 24
    assert abs(models.count("judge-one") - models.count("judge-two")) <= 2
    by_pair = {p.correlation_id: p.judge_idx for p in await harness.pairs(uid)}
    for request in harness.provider.requests:
        expected = "judge-one" if by_pair[request.correlation_id] == 0 else "judge-two"
        assert request.llm_config_overrides is not None
        assert request.llm_config_overrides.model_override == expected
    snap = await reads.snapshot(harness.db, uid)
    assert snap is not None
    judges = {j.judge: j for j in snap.judges}
    assert set(judges) == {"mock/judge-one", "mock/judge-two"}
    assert sum(j.comparisons for j in judges.values()) == 24
    # the fake judge always prefers the longer essay: both agree with the scale
    assert all(j.agreement is not None and j.agreement > 0.8 for j in judges.values())


async def test_a_batch_without_anchors_has_no_grades(harness: Harness) -> None:
    uid = await harness.batch(4, comparisons={"targetPerEssay": 3})
    for _ in range(20):
        await harness.engine.advance(uid)
        if not await harness.answer():
            break
    await harness.engine.followups(uid)
    _, _, data = harness.kube.written[0]
    assert json.loads(data["summary.json"])["grades"] is None
    assert all(r["projected_grade"] is None for r in json.loads(data["results.json"]))
    snap = await reads.snapshot(harness.db, uid)
    assert snap is not None and snap.grades is None


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


async def test_a_refused_judge_fails_the_batch_at_once(harness: Harness) -> None:
    """The provider API refuses the judge itself (INVALID_CONFIG naming provider_override):
    the batch fails as JudgeRefused at the first refusal instead of pair by pair, what the API
    queued is cancelled, nothing more is sent, and the follow-ups are written once."""
    uid = await harness.batch(8)
    harness.provider.refuse = {1: LLMErrorCode.INVALID_CONFIG}
    harness.provider.refuse_details = {
        "field": "llm_config_overrides.provider_override",
        "provider": "mock",
    }
    await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.FAILED
    assert batch.reason == "JudgeRefused"
    assert batch.message.startswith("The provider API refuses the judge of spec.judge: refused.")
    assert (batch.submitted, batch.completed, batch.failed) == (4, 0, 4)  # one round sent
    pairs = await harness.pairs(uid)
    assert {p.status for p in pairs} == {PairStatus.FAILED}
    assert not any(p.needs_retry for p in pairs)
    assert harness.provider.cancelled == [uid]
    assert ("Warning", "JudgeRefused") in harness.kube.events
    assert harness.metric("cj_operator_comparisons_submitted_total", outcome="queued") == 3
    assert harness.metric("cj_operator_comparisons_submitted_total", outcome="refused") == 1
    sent = len(harness.provider.requests)
    await harness.engine.advance(uid)
    await harness.engine.followups(uid)
    assert len(harness.provider.requests) == sent
    assert [e.state for e in harness.publisher.events] == [BatchStateEnum.FAILED]


async def test_a_refusal_of_one_request_leaves_the_judge_alone(harness: Harness) -> None:
    uid = await harness.batch(8)
    harness.provider.refuse = {1: LLMErrorCode.INVALID_CONFIG}
    harness.provider.refuse_details = {"field": "llm_config_overrides.temperature_override"}
    await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert batch.state == BatchStateEnum.WAITING_CALLBACKS
    assert harness.provider.cancelled == []


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


PRICED = ModelInfo(
    provider=LLMProviderType.MOCK,
    model="priced",
    input_usd_per_mtok=100.0,
    output_usd_per_mtok=400.0,
)
PRICED_JUDGE = {"provider": "mock", "model": "priced", "maxTokens": 50}


async def _expected_estimates(harness: Harness, uid: str) -> dict[int, float]:
    """Each pair row's a-priori cost, from the stored essays and the documented formula."""
    async with harness.db.sessions() as session:
        texts = dict(
            (
                await session.execute(select(Essay.idx, Essay.text).where(Essay.batch_uid == uid))
            ).all()
        )
    prompt = len(
        CJBatchSpec.model_validate((await batch_row(harness.db, uid)).spec).assignment.user_prompt()
    )
    return {
        p.id: estimate_cost_usd(
            Price(100.0, 400.0), prompt + len(texts[p.essay_a_idx]) + len(texts[p.essay_b_idx]), 50
        )
        for p in await harness.pairs(uid)
    }


async def test_a_round_reserves_its_estimated_cost_and_is_cut_at_the_limit(
    harness: Harness,
) -> None:
    harness.provider.model_list = [PRICED]
    uid = await harness.batch(8, judge=PRICED_JUDGE, limits={"maxCostUSD": 0.4})
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    expected = await _expected_estimates(harness, uid)
    # Each comparison costs ~0.085 USD; before any answer calibrates the estimate a round may
    # reserve half of the 0.4 left: 2 of the round's 4 pairs.
    assert len(pairs) == 2
    assert [p.estimate_usd for p in pairs] == pytest.approx([expected[p.id] for p in pairs])
    assert [p.reserved_usd for p in pairs] == [p.estimate_usd for p in pairs]
    snapshot = await reads.snapshot(harness.db, uid)
    assert snapshot is not None
    assert snapshot.reserved_usd == pytest.approx(sum(p.reserved_usd for p in pairs))
    assert sum(p.reserved_usd for p in pairs) <= 0.2
    for _ in range(30):
        if not await harness.answer(cost=0.05):
            break
        await harness.engine.advance(uid)
    batch = await batch_row(harness.db, uid)
    assert (batch.state, batch.reason) == (BatchStateEnum.COMPLETED, "CostLimitExceeded")
    # Within one comparison's cost of the limit: no overshoot beyond it, no early stop.
    assert 0.4 - 0.1 <= batch.cost_usd <= 0.4 + 0.05, batch.cost_usd
    later = await harness.pairs(uid)
    assert all(p.reserved_usd < p.estimate_usd for p in later[2:])  # calibrated: ~0.6 x
    snapshot = await reads.snapshot(harness.db, uid)
    assert snapshot is not None and snapshot.reserved_usd == 0.0


async def test_a_failed_comparison_releases_its_reservation_and_its_retry_reserves_again(
    harness: Harness,
) -> None:
    harness.provider.model_list = [PRICED]
    uid = await harness.batch(
        4,
        judge=PRICED_JUDGE,
        limits={"maxCostUSD": 10.0, "maxRetries": 1},
        comparisons={"maxTotal": 2},
    )

    async def reserved() -> float:
        snapshot = await reads.snapshot(harness.db, uid)
        assert snapshot is not None
        return snapshot.reserved_usd

    await harness.engine.advance(uid)
    first = await harness.pairs(uid)
    held = sum(p.reserved_usd for p in first)
    assert len(first) == 2 and held > 0 and await reserved() == pytest.approx(held)
    await harness.answer(fail=LLMErrorCode.PROVIDER_TIMEOUT)
    assert await reserved() == 0.0  # released by the failure
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    retries = pairs[2:]
    assert [p.attempt for p in retries] == [2, 2]
    assert [p.reserved_usd for p in retries] == pytest.approx([p.reserved_usd for p in first])
    assert await reserved() == pytest.approx(held)
    await harness.answer(cost=0.01)
    assert await reserved() == 0.0
    assert (await batch_row(harness.db, uid)).cost_usd == pytest.approx(0.02)


async def test_a_refused_comparison_releases_its_reservation(harness: Harness) -> None:
    harness.provider.model_list = [PRICED]
    uid = await harness.batch(4, judge=PRICED_JUDGE, limits={"maxCostUSD": 10.0})
    harness.provider.refuse = {0: LLMErrorCode.INVALID_PROMPT}
    await harness.engine.advance(uid)
    pairs = await harness.pairs(uid)
    assert [p.status for p in pairs] == [PairStatus.FAILED, PairStatus.SUBMITTED]
    snapshot = await reads.snapshot(harness.db, uid)
    assert snapshot is not None
    assert snapshot.reserved_usd == pytest.approx(pairs[1].reserved_usd)


async def test_a_retry_that_no_longer_fits_under_the_limit_is_dropped(harness: Harness) -> None:
    harness.provider.model_list = [PRICED]
    uid = await harness.batch(
        4,
        judge=PRICED_JUDGE,
        limits={"maxCostUSD": 0.2, "maxRetries": 3},
        comparisons={"maxTotal": 1},
    )
    await harness.engine.advance(uid)
    (pair,) = await harness.pairs(uid)
    # The failed call spent 0.15 USD: 0.05 is left, less than the retry's ~0.085.
    await PostgresCallbackStore(harness.db).record(
        [failure(pair.correlation_id, LLMErrorCode.PARSING_ERROR, cost=0.15)]
    )
    await harness.engine.advance(uid)
    (pair,) = await harness.pairs(uid)
    assert (pair.status, pair.needs_retry, pair.retried) == (PairStatus.FAILED, False, False)
    batch = await batch_row(harness.db, uid)
    assert batch.state.is_terminal and batch.cost_usd == pytest.approx(0.15)


async def test_without_prices_a_cost_limited_batch_waits(harness: Harness) -> None:
    harness.provider.prices_down = True
    limited = await harness.batch(4, limits={"maxCostUSD": 1.0})
    free = await harness.batch(4)
    await harness.engine.advance(limited)
    await harness.engine.advance(free)
    assert await harness.pairs(limited) == []
    assert (await batch_row(harness.db, limited)).state == BatchStateEnum.GENERATING_PAIRS
    assert len(await harness.pairs(free)) == 2  # no limit: nothing to reserve against


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
