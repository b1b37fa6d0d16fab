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
                success(a, cost=0.5, **stored.echo(a)),
                failure(b),
                success(a, **stored.echo(a)),
                success(c, EssayComparisonWinner.ESSAY_B, **stored.echo(c)),
            ],
        )
        assert first.outcomes == {Outcome.SUCCESS: 2, Outcome.FAILURE: 1, Outcome.DUPLICATE: 1}
        again = await PostgresCallbackStore(db).record(
            [success(a, **stored.echo(a)), failure(b), success(c, **stored.echo(c))]
        )
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
            success(cid, **stored.echo(cid))
            if i % 5
            else failure(cid, LLMErrorCode.CONTENT_TOO_LONG)
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
        late = [success(c, cost=0.3, **stored.echo(c)) for c in stored.correlation_ids]
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
        first = success(a, cost=0.5, **stored.echo(a))
        await PostgresCallbackStore(db).record([first])
        # The same request judged again (a worker re-ran it): its own completed_at and cost.
        second = success(a, EssayComparisonWinner.ESSAY_B, cost=0.25, **stored.echo(a)).model_copy(
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


async def test_a_verdict_without_the_request_metadata_is_forged_and_not_recorded(
    database_url: str,
) -> None:
    """A forger who knows an open correlation id but leaves out (or nulls) the metadata keys
    the operator sent is caught like one who names another pair; an error event that echoes
    only part of the metadata (a worker's give-up event) is still recorded."""
    db = await migrated(database_url)
    try:
        stored = await stored_batch(db, pairs=5)
        bare, no_pair, nulled, honest, give_up = stored.correlation_ids
        partial = {k: v for k, v in stored.echo(no_pair).items() if k != "pair_id"}
        results = [
            success(bare, EssayComparisonWinner.ESSAY_B),
            success(no_pair, **partial),
            success(nulled, **{**stored.echo(nulled), "essay_b_id": None}),
            success(honest, **stored.echo(honest)),
            failure(give_up).model_copy(update={"request_metadata": {"batch_id": stored.uid}}),
        ]
        plan = await PostgresCallbackStore(db).record(results)
        assert plan.outcomes == {Outcome.FORGED: 3, Outcome.SUCCESS: 1, Outcome.FAILURE: 1}
        reasons = {r.correlation_id: why for r, why in plan.forged}
        assert reasons[bare].startswith("forged: a verdict without request_metadata.batch_id")
        assert reasons[no_pair].startswith("forged: a verdict without request_metadata.pair_id")
        assert reasons[nulled].startswith("forged: request_metadata.essay_b_id is None")
        batch = await batch_row(db, stored.uid)
        assert (batch.submitted, batch.completed, batch.failed) == (5, 1, 1)
        async with db.sessions() as session:
            status = dict(
                (
                    await session.execute(
                        select(ComparisonPair.correlation_id, ComparisonPair.status).where(
                            ComparisonPair.batch_uid == stored.uid
                        )
                    )
                ).all()
            )
        assert [status[c] for c in (bare, no_pair, nulled)] == [PairStatus.PENDING] * 3
        assert (status[honest], status[give_up]) == (PairStatus.SUCCEEDED, PairStatus.FAILED)
        # The honest answers for the forged-at pairs still count when they come.
        later = await PostgresCallbackStore(db).record(
            [success(c, **stored.echo(c)) for c in (bare, no_pair, nulled)]
        )
        assert later.outcomes == {Outcome.SUCCESS: 3}
        assert (await batch_row(db, stored.uid)).completed == 4
    finally:
        await db.dispose()
