"""Recording callbacks on the real PostgreSQL: idempotent, exact under concurrency."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy import func, select, update

from cj_operator.accounting import Outcome
from cj_operator.clock import utcnow
from cj_operator.db import reads, rounds
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.models import ComparisonPair, LateResult, PairStatus
from common_core import EssayComparisonWinner, LLMComparisonResultV1, LLMErrorCode
from tests.integration.operator.batches import batch_row, migrated, stored_batch
from tests.support.factories import NOW, failure, success


async def test_recording_is_idempotent(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        stored = await stored_batch(db, pairs=4)
        a, b, c, _ = stored.correlation_ids
        first = await PostgresCallbackStore(db).record(
            [
                success(a, cost=0.5),
                failure(b),
                success(a),
                success(c, EssayComparisonWinner.ESSAY_B),
            ],
        )
        assert first.outcomes == {Outcome.SUCCESS: 2, Outcome.FAILURE: 1, Outcome.DUPLICATE: 1}
        again = await PostgresCallbackStore(db).record([success(a), failure(b), success(c)])
        assert again.outcomes == {Outcome.DUPLICATE: 3}
        batch = await batch_row(db, stored.uid)
        assert (batch.submitted, batch.completed, batch.failed) == (4, 2, 1)
        assert batch.cost_usd == 0.5 + 0.001
        async with db.sessions() as session:
            pair_b = (
                await session.execute(
                    select(ComparisonPair).where(ComparisonPair.correlation_id == b)
                )
            ).scalar_one()
        assert pair_b.status == PairStatus.FAILED
        assert pair_b.error_code == LLMErrorCode.PROVIDER_TIMEOUT.value
        assert pair_b.needs_retry is True
    finally:
        await db.dispose()


async def test_concurrent_callbacks_for_one_batch_are_counted_exactly(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        stored = await stored_batch(db, n_essays=40, pairs=300)
        rng = random.Random(7)
        results = [
            success(cid) if i % 5 else failure(cid, LLMErrorCode.CONTENT_TOO_LONG)
            for i, cid in enumerate(stored.correlation_ids)
        ]
        deliveries = results * 3  # every callback delivered three times
        rng.shuffle(deliveries)
        polls = [deliveries[i : i + 37] for i in range(0, len(deliveries), 37)]

        async def consume(mine: list[list[LLMComparisonResultV1]]) -> None:
            for poll in mine:
                await PostgresCallbackStore(db).record(poll)

        await asyncio.gather(*(consume(polls[k::8]) for k in range(8)))
        batch = await batch_row(db, stored.uid)
        assert batch.submitted == 300
        assert batch.completed == 240
        assert batch.failed == 60
        async with db.sessions() as session:
            open_pairs = (
                await session.execute(
                    select(func.count()).where(
                        ComparisonPair.batch_uid == stored.uid,
                        ComparisonPair.status.in_(rounds.OPEN_STATUSES),
                    )
                )
            ).scalar_one()
        assert open_pairs == 0
    finally:
        await db.dispose()


async def test_late_callbacks_after_overdue_are_stale(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        stored = await stored_batch(db, pairs=2)
        async with db.sessions.begin() as session:
            await session.execute(
                update(ComparisonPair)
                .where(ComparisonPair.batch_uid == stored.uid)
                .values(status=PairStatus.SUBMITTED, submitted_at=utcnow())
            )
        cutoff = utcnow()
        assert await reads.with_overdue_pairs(db, cutoff) == [stored.uid]
        async with db.sessions.begin() as session:
            batch_row_locked = await rounds.lock_batch(session, stored.uid)
            assert batch_row_locked is not None
            assert await rounds.close_overdue(session, batch_row_locked, cutoff) == 2
        late = [success(c, cost=0.3) for c in stored.correlation_ids]
        plan = await PostgresCallbackStore(db).record(late)
        assert plan.outcomes == {Outcome.STALE: 2}
        batch = await batch_row(db, stored.uid)
        assert (batch.submitted, batch.completed, batch.failed) == (2, 0, 2)
        # The late calls were spent: their cost counts (once, however often delivered).
        assert (batch.cost_usd, batch.late_results, batch.late_cost_usd) == (0.6, 2, 0.6)
        again = await PostgresCallbackStore(db).record(late)
        assert again.outcomes == {Outcome.STALE: 2} and again.late == []
        batch = await batch_row(db, stored.uid)
        assert (batch.cost_usd, batch.late_results, batch.total_tokens) == (0.6, 2, 240)
    finally:
        await db.dispose()


async def test_a_second_judge_call_for_a_comparison_is_counted_in_the_cost_once(
    database_url: str,
) -> None:
    db = await migrated(database_url)
    try:
        stored = await stored_batch(db, pairs=2)
        a = stored.correlation_ids[0]
        first = success(a, cost=0.5)
        await PostgresCallbackStore(db).record([first])
        # The same request judged again (a worker re-ran it): its own completed_at and cost.
        second = success(a, EssayComparisonWinner.ESSAY_B, cost=0.25).model_copy(
            update={"completed_at": NOW + timedelta(seconds=5)}
        )
        plan = await PostgresCallbackStore(db).record([second, first])
        assert plan.outcomes == {Outcome.DUPLICATE: 2}
        assert [(c.outcome, c.result.cost_estimate) for c in plan.late] == [
            (Outcome.DUPLICATE, 0.25)
        ]
        assert plan.touched_batches == {stored.uid}
        batch = await batch_row(db, stored.uid)
        assert (batch.completed, batch.failed) == (1, 0)  # counted once for the ranking
        assert (batch.cost_usd, batch.late_results, batch.late_cost_usd) == (0.75, 1, 0.25)
        assert batch.total_tokens == 240
        # Redelivered (a rewound poll), neither answer costs anything more.
        again = await PostgresCallbackStore(db).record([first, second])
        assert again.late == []
        batch = await batch_row(db, stored.uid)
        assert (batch.cost_usd, batch.late_results) == (0.75, 1)
        async with db.sessions() as session:
            row = (
                await session.execute(
                    select(ComparisonPair).where(ComparisonPair.correlation_id == a)
                )
            ).scalar_one()
            late = (await session.execute(select(LateResult))).scalars().all()
        assert (row.winner, row.answer_completed_at) == ("essay_a", NOW)
        assert [(r.pair_id, r.outcome, r.cost_usd) for r in late] == [(row.id, "duplicate", 0.25)]
        snapshot = await reads.snapshot(db, stored.uid)
        assert snapshot is not None
        assert (snapshot.late_results, snapshot.late_cost_usd) == (1, 0.25)
    finally:
        await db.dispose()
