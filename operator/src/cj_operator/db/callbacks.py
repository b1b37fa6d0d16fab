"""Recording the judges' answers: one poll of callback events into the pairs and batches.

Transactions: :meth:`PostgresCallbackStore.record` is ONE transaction per call (one Kafka
poll); it opens and commits it. Batches are locked in uid order, then the named pairs in id
order (the order `cj_operator.db.rounds` uses too, so nothing deadlocks). Recording is
idempotent on `correlation_id`: a duplicate changes no counter and is counted as a duplicate.
A duplicate or stale answer that is a judge call of its own (`accounting.LateCall`) is stored
in `cj_late_results` once per (correlation id, completed_at), and its cost and tokens are
added to the batch's then (they were spent), with `late_results` and `late_cost_usd`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cj_operator.accounting import (
    OVERDUE_ERROR_CODE,
    LateCall,
    OpenPair,
    PollPlan,
    plan_poll,
    retry_delay,
)
from cj_operator.clock import utcnow
from cj_operator.db.models import Batch, ComparisonPair, Essay, LateResult, PairStatus
from cj_operator.db.rounds import OPEN_STATUSES, retry_not_before
from cj_operator.db.session import Database
from common_core import LLMComparisonResultV1


class PostgresCallbackStore:
    """The callback consumer's `CallbackStore` on the operator's PostgreSQL tables.

    A failed comparison that is retried waits `accounting.retry_delay` (with
    `retry_backoff_seconds`, CJ_OPERATOR_RETRY_BACKOFF_SECONDS) before it is re-submitted.
    """

    def __init__(self, db: Database, retry_backoff_seconds: float = 0.0) -> None:
        self._db = db
        self._retry_backoff = retry_backoff_seconds

    async def record(self, results: Sequence[LLMComparisonResultV1]) -> PollPlan:
        """Record one poll's results in one transaction; each batch's counters change once.

        Returns the plan (what was recorded, per-batch deltas and outcome counts).
        """
        if not results:
            return PollPlan()
        cids = list({r.correlation_id for r in results})
        now = utcnow()
        async with self._db.sessions.begin() as session:
            uids = sorted(
                set(
                    (
                        await session.execute(
                            select(ComparisonPair.batch_uid).where(
                                ComparisonPair.correlation_id.in_(cids)
                            )
                        )
                    ).scalars()
                )
            )
            batches = {
                b.uid: b
                for b in (
                    await session.execute(
                        select(Batch)
                        .where(Batch.uid.in_(uids))
                        .order_by(Batch.uid)
                        .with_for_update()
                    )
                ).scalars()
            }
            rows = (
                (
                    await session.execute(
                        select(ComparisonPair)
                        .where(ComparisonPair.correlation_id.in_(cids))
                        .order_by(ComparisonPair.id)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            by_pair_id = {row.id: row for row in rows}
            essay_ids = {
                (uid, idx): essay_id
                for uid, idx, essay_id in (
                    await session.execute(
                        select(Essay.batch_uid, Essay.idx, Essay.essay_id).where(
                            tuple_(Essay.batch_uid, Essay.idx).in_(
                                {(r.batch_uid, r.essay_a_idx) for r in rows}
                                | {(r.batch_uid, r.essay_b_idx) for r in rows}
                            )
                        )
                    )
                ).all()
            }
            views = {
                row.correlation_id: OpenPair(
                    pair_id=row.id,
                    batch_uid=row.batch_uid,
                    open=row.status in OPEN_STATUSES,
                    closed_by_operator=row.error_code == OVERDUE_ERROR_CODE,
                    attempt=row.attempt,
                    max_retries=batches[row.batch_uid].max_retries,
                    batch_finished=batches[row.batch_uid].state.is_terminal
                    or batches[row.batch_uid].deleted_at is not None,
                    essay_a_id=essay_ids.get((row.batch_uid, row.essay_a_idx), ""),
                    essay_b_id=essay_ids.get((row.batch_uid, row.essay_b_idx), ""),
                    answer_completed_at=row.answer_completed_at,
                )
                for row in rows
            }
            plan = plan_poll(results, views)
            for change in plan.updates:
                row = by_pair_id[change.pair_id]
                result = change.result
                row.status = PairStatus.SUCCEEDED if change.success else PairStatus.FAILED
                row.needs_retry = change.needs_retry
                if change.needs_retry:
                    delay = retry_delay(result, row.attempt, self._retry_backoff)
                    row.retry_not_before = retry_not_before(now, delay)
                row.completed_at = now
                row.winner = result.winner.value if result.winner else None
                row.confidence = result.confidence
                row.justification = result.justification
                if result.error_detail is not None:
                    row.error_code = result.error_detail.error_code.value
                    row.error_message = result.error_detail.message
                row.provider = result.provider.value
                row.model = result.model
                row.prompt_tokens = result.token_usage.prompt_tokens
                row.completion_tokens = result.token_usage.completion_tokens
                row.total_tokens = result.token_usage.total_tokens
                row.cost_usd = result.cost_estimate
                row.latency_ms = result.response_time_ms
                row.answer_completed_at = result.completed_at
            for uid, delta in plan.deltas.items():
                batch = batches[uid]
                batch.completed += delta.completed
                batch.failed += delta.failed
                batch.cost_usd += delta.cost_usd
                batch.prompt_tokens += delta.prompt_tokens
                batch.completion_tokens += delta.completion_tokens
                batch.total_tokens += delta.total_tokens
            plan.late = await _count_late(session, plan.late, batches)
        return plan


async def _count_late(
    session: AsyncSession, late: Sequence[LateCall], batches: dict[str, Batch]
) -> list[LateCall]:
    """Store the late calls not stored before and add their cost and tokens to their
    batches; returns those counted now (a redelivered one was counted already)."""
    if not late:
        return []
    inserted = (
        await session.execute(
            insert(LateResult)
            .values(
                [
                    {
                        "batch_uid": call.batch_uid,
                        "pair_id": call.pair_id,
                        "correlation_id": call.result.correlation_id,
                        "completed_at": call.result.completed_at,
                        "outcome": call.outcome.value,
                        "cost_usd": call.result.cost_estimate,
                        "prompt_tokens": call.result.token_usage.prompt_tokens,
                        "completion_tokens": call.result.token_usage.completion_tokens,
                        "total_tokens": call.result.token_usage.total_tokens,
                    }
                    for call in late
                ]
            )
            .on_conflict_do_nothing(constraint="uq_cj_late_results_call")
            .returning(LateResult.correlation_id, LateResult.completed_at)
        )
    ).all()
    new = {(cid, at) for cid, at in inserted}
    counted = [c for c in late if (c.result.correlation_id, c.result.completed_at) in new]
    for call in counted:
        batch = batches[call.batch_uid]
        usage = call.result.token_usage
        batch.cost_usd += call.result.cost_estimate
        batch.prompt_tokens += usage.prompt_tokens
        batch.completion_tokens += usage.completion_tokens
        batch.total_tokens += usage.total_tokens
        batch.late_results += 1
        batch.late_cost_usd += call.result.cost_estimate
    return counted
