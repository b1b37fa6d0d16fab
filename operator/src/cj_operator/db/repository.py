"""Queries and transitions on the operator's tables.

Every change to a batch happens with its row locked (`SELECT ... FOR UPDATE`); when pair rows
are locked too, the batch row is always locked first (batches in uid order, pairs in id order),
so the callback consumer, the engine and the monitor never deadlock. Transitions are
idempotent: calling one again once it happened changes nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cj_operator.accounting import (
    OVERDUE_ERROR_CODE,
    OpenPair,
    PollPlan,
    plan_poll,
    should_retry,
)
from cj_operator.comparison_requests import EssayRecord, PairToSend
from cj_operator.db.models import Batch, ComparisonPair, Essay, PairStatus, Score
from cj_operator.db.session import Database
from cj_operator.planning import REASON_CANCELLED
from cj_operator.results import FinishedBatch, ResultRow, results_config_map_name
from cj_operator.scoring.bradley_terry import BradleyTerryFit
from cj_operator.spec import CJBatchSpec
from cj_operator.spec import Essay as SpecEssay
from cj_operator.status.build import BatchSnapshot
from cj_operator.status.model import TOP_ESSAYS, TopEssay
from common_core import BatchStateEnum, LLMComparisonResultV1

OPEN_STATUSES = (PairStatus.PENDING, PairStatus.SUBMITTED)
ABANDONED_ERROR_CODE = "CJ_BATCH_FINISHED"
"""`error_code` of a comparison still open when its batch finished (timeout, cancel)."""
REFUSED_PREFIX = "refused: "


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ResolvedLimits:
    """A spec's limits with the operator's defaults filled in."""

    max_retries: int
    min_success_rate: float
    max_cost_usd: float | None
    timeout_seconds: float


def resolve_limits(
    spec: CJBatchSpec, default_timeout_seconds: float, default_min_success_rate: float
) -> ResolvedLimits:
    """spec.limits, unset fields taken from BATCH_TIMEOUT_HOURS / MIN_SUCCESS_RATE_THRESHOLD."""
    limits = spec.limits
    return ResolvedLimits(
        max_retries=limits.max_retries,
        min_success_rate=(
            limits.min_success_rate
            if limits.min_success_rate is not None
            else default_min_success_rate
        ),
        max_cost_usd=limits.max_cost_usd,
        timeout_seconds=limits.timeout_seconds(default_timeout_seconds),
    )


def batch_spec(batch: Batch) -> CJBatchSpec:
    """The spec stored with a batch."""
    return CJBatchSpec.model_validate(batch.spec)


async def lock_batch(session: AsyncSession, uid: str) -> Batch | None:
    """The batch row, locked until the transaction ends; None when unknown."""
    result = await session.execute(select(Batch).where(Batch.uid == uid).with_for_update())
    return result.scalar_one_or_none()


# --- creation, essays, spec changes -----------------------------------------------------------


async def register_batch(
    db: Database,
    *,
    uid: str,
    namespace: str,
    name: str,
    generation: int,
    spec: CJBatchSpec,
    limits: ResolvedLimits,
) -> bool:
    """Insert the batch (state INITIALIZING) unless it exists; True when inserted now."""
    now = utcnow()
    values: dict[str, Any] = {
        "uid": uid,
        "namespace": namespace,
        "name": name,
        "generation": generation,
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "state": BatchStateEnum.INITIALIZING,
        "suspended": spec.suspend,
        "max_retries": limits.max_retries,
        "min_success_rate": limits.min_success_rate,
        "max_cost_usd": limits.max_cost_usd,
        "deadline_at": now + timedelta(seconds=limits.timeout_seconds),
        "essays_count": 0,
        "budget": 0,
        "round": 0,
        "submitted": 0,
        "completed": 0,
        "failed": 0,
        "cost_usd": 0.0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "reason": "",
        "message": "",
        "version": 1,
        "created_at": now,
    }
    async with db.sessions.begin() as session:
        result = await session.execute(
            insert(Batch).values(**values).on_conflict_do_nothing(index_elements=["uid"])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an INSERT


async def store_essays(db: Database, uid: str, essays: Sequence[SpecEssay]) -> BatchStateEnum:
    """Store the batch's essays once and start it; returns the batch state afterwards.

    Fewer than 2 essays complete the batch at once (reason InsufficientEssays). Calling it
    again after the essays are stored changes nothing. Raises LookupError for an unknown uid.
    """
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None:
            raise LookupError(f"no batch {uid}")
        if batch.state != BatchStateEnum.INITIALIZING or batch.essays_count > 0:
            return batch.state
        if essays:
            await session.execute(
                insert(Essay),
                [
                    {
                        "batch_uid": uid,
                        "idx": i,
                        "essay_id": e.id,
                        "text": e.text,
                        "meta": dict(e.metadata or {}),
                    }
                    for i, e in enumerate(essays)
                ],
            )
        now = utcnow()
        batch.essays_count = len(essays)
        batch.budget = batch_spec(batch).effective_budget(len(essays))
        batch.started_at = now
        batch.reason, batch.message = "", ""
        if len(essays) < 2:
            batch.state = BatchStateEnum.COMPLETED
            batch.reason = "InsufficientEssays"
            batch.message = (
                f"The batch has {len(essays)} essay{'s' if len(essays) != 1 else ''}; "
                "at least 2 are needed to compare."
            )
            batch.finished_at = now
        else:
            batch.state = BatchStateEnum.GENERATING_PAIRS
        return batch.state


async def note_essays_problem(
    db: Database, uid: str, reason: str, message: str, *, fatal: bool
) -> None:
    """Record why the essays cannot be stored; `fatal` fails the batch (state FAILED)."""
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None or batch.state != BatchStateEnum.INITIALIZING:
            return
        if (batch.reason, batch.message) != (reason, message):
            batch.reason, batch.message = reason, message
        if fatal:
            now = utcnow()
            batch.state = BatchStateEnum.FAILED
            batch.started_at = batch.started_at or now
            batch.finished_at = now


async def apply_spec_update(
    db: Database, uid: str, spec: CJBatchSpec, generation: int, limits: ResolvedLimits
) -> bool:
    """Take over the changeable parts of a new spec (budget, stopping, limits, suspend).

    Returns True when the batch exists. A finished batch only records the generation.
    """
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None:
            return False
        batch.generation = max(batch.generation, generation)
        if batch.state.is_terminal:
            return True
        batch.spec = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        batch.suspended = spec.suspend
        if batch.essays_count:
            batch.budget = spec.effective_budget(batch.essays_count)
        batch.max_retries = limits.max_retries
        batch.min_success_rate = limits.min_success_rate
        batch.max_cost_usd = limits.max_cost_usd
        batch.deadline_at = batch.created_at + timedelta(seconds=limits.timeout_seconds)
        return True


# --- rounds and submissions ---------------------------------------------------------------------


async def create_retries(session: AsyncSession, batch: Batch) -> int:
    """New rows (attempt + 1, new correlation id) for failed pairs awaiting a retry.

    The batch must be locked; counts the new rows in `submitted`. Returns how many.
    """
    rows = (
        (
            await session.execute(
                select(ComparisonPair)
                .where(
                    ComparisonPair.batch_uid == batch.uid,
                    ComparisonPair.status == PairStatus.FAILED,
                    ComparisonPair.needs_retry.is_(True),
                    ComparisonPair.retried.is_(False),
                )
                .order_by(ComparisonPair.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        row.retried = True
        session.add(
            ComparisonPair(
                batch_uid=batch.uid,
                correlation_id=uuid.uuid4(),
                round=row.round,
                attempt=row.attempt + 1,
                retry_of_id=row.id,
                essay_a_idx=row.essay_a_idx,
                essay_b_idx=row.essay_b_idx,
                status=PairStatus.PENDING,
            )
        )
    batch.submitted += len(rows)
    return len(rows)


async def drop_retries(session: AsyncSession, batch: Batch) -> int:
    """Make awaiting retries final failures (no more submissions, e.g. cost limit reached)."""
    result = await session.execute(
        update(ComparisonPair)
        .where(
            ComparisonPair.batch_uid == batch.uid,
            ComparisonPair.status == PairStatus.FAILED,
            ComparisonPair.needs_retry.is_(True),
            ComparisonPair.retried.is_(False),
        )
        .values(needs_retry=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


async def count_open(session: AsyncSession, uid: str) -> int:
    """Pairs of the batch without an answer (PENDING or SUBMITTED)."""
    result = await session.execute(
        select(func.count())
        .select_from(ComparisonPair)
        .where(ComparisonPair.batch_uid == uid, ComparisonPair.status.in_(OPEN_STATUSES))
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class PairLedger:
    """A batch's comparisons as the round-end decision sees them."""

    history: list[tuple[int, int]]
    outcomes: list[tuple[int, int]]
    final_failures: int


async def pair_ledger(session: AsyncSession, uid: str) -> PairLedger:
    """First attempts (history), winners (outcomes) and final failures of a batch."""
    rows = (
        await session.execute(
            select(
                ComparisonPair.essay_a_idx,
                ComparisonPair.essay_b_idx,
                ComparisonPair.attempt,
                ComparisonPair.status,
                ComparisonPair.winner,
                ComparisonPair.needs_retry,
            )
            .where(ComparisonPair.batch_uid == uid)
            .order_by(ComparisonPair.id)
        )
    ).all()
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    final_failures = 0
    for a, b, attempt, status, winner, needs_retry in rows:
        if attempt == 1:
            history.append((a, b))
        if status == PairStatus.SUCCEEDED:
            outcomes.append((a, b) if winner == "essay_a" else (b, a))
        elif status == PairStatus.FAILED and not needs_retry:
            final_failures += 1
    return PairLedger(history, outcomes, final_failures)


async def previous_scores(session: AsyncSession, uid: str, n_items: int) -> list[float] | None:
    """The last fit's scores in essay order; None before the first fit."""
    rows = (
        await session.execute(select(Score.essay_idx, Score.score).where(Score.batch_uid == uid))
    ).all()
    if len(rows) != n_items:
        return None
    scores = [0.0] * n_items
    for idx, score in rows:
        scores[idx] = score
    return scores


async def insert_round(
    session: AsyncSession, batch: Batch, round_number: int, pairs: Iterable[tuple[int, int]]
) -> int:
    """Store a new round's pairs (PENDING, attempt 1), count them submitted; returns how many."""
    rows = [
        {
            "batch_uid": batch.uid,
            "correlation_id": uuid.uuid4(),
            "round": round_number,
            "attempt": 1,
            "essay_a_idx": a,
            "essay_b_idx": b,
            "status": PairStatus.PENDING,
            "needs_retry": False,
            "retried": False,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost_usd": 0.0,
        }
        for a, b in pairs
    ]
    if rows:
        await session.execute(insert(ComparisonPair), rows)
    batch.round = round_number
    batch.submitted += len(rows)
    batch.state = BatchStateEnum.WAITING_CALLBACKS
    return len(rows)


async def pending_pairs(session: AsyncSession, uid: str, limit: int) -> list[PairToSend]:
    """PENDING pairs of a batch (not yet confirmed by the provider API), with their essays."""
    essay_a = aliased(Essay)
    essay_b = aliased(Essay)
    rows = (
        await session.execute(
            select(ComparisonPair, essay_a, essay_b)
            .join(
                essay_a,
                and_(
                    essay_a.batch_uid == ComparisonPair.batch_uid,
                    essay_a.idx == ComparisonPair.essay_a_idx,
                ),
            )
            .join(
                essay_b,
                and_(
                    essay_b.batch_uid == ComparisonPair.batch_uid,
                    essay_b.idx == ComparisonPair.essay_b_idx,
                ),
            )
            .where(ComparisonPair.batch_uid == uid, ComparisonPair.status == PairStatus.PENDING)
            .order_by(ComparisonPair.id)
            .limit(limit)
        )
    ).all()
    return [
        PairToSend(
            pair_id=pair.id,
            correlation_id=pair.correlation_id,
            round=pair.round,
            attempt=pair.attempt,
            essay_a=EssayRecord(a.idx, a.essay_id, a.text, dict(a.meta or {})),
            essay_b=EssayRecord(b.idx, b.essay_id, b.text, dict(b.meta or {})),
        )
        for pair, a, b in rows
    ]


@dataclass(frozen=True)
class Refusal:
    """The provider API refused one request of a bulk submission."""

    pair_id: int
    error_code: str
    message: str


async def record_submission(
    db: Database, uid: str, queued: Sequence[int], refused: Sequence[Refusal]
) -> int:
    """Mark queued pairs SUBMITTED and refused ones FAILED (retry rule applied).

    Only pairs still PENDING change (a callback may have answered one already). Returns
    how many refused pairs await a retry.
    """
    now = utcnow()
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None:
            return 0
        if queued:
            await session.execute(
                update(ComparisonPair)
                .where(
                    ComparisonPair.id.in_(queued),
                    ComparisonPair.status == PairStatus.PENDING,
                )
                .values(status=PairStatus.SUBMITTED, submitted_at=now)
            )
        retries = 0
        if refused:
            by_id = {r.pair_id: r for r in refused}
            rows = (
                (
                    await session.execute(
                        select(ComparisonPair)
                        .where(
                            ComparisonPair.id.in_(list(by_id)),
                            ComparisonPair.status == PairStatus.PENDING,
                        )
                        .order_by(ComparisonPair.id)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                refusal = by_id[row.id]
                row.status = PairStatus.FAILED
                row.error_code = refusal.error_code
                row.error_message = REFUSED_PREFIX + refusal.message
                row.completed_at = now
                row.needs_retry = should_retry(refusal.error_code, row.attempt, batch.max_retries)
                retries += row.needs_retry
            batch.failed += len(rows)
        return retries


# --- callbacks ------------------------------------------------------------------------------------


async def record_callbacks(db: Database, results: Sequence[LLMComparisonResultV1]) -> PollPlan:
    """Record one poll's results in one transaction; each batch's counters change once.

    Batches are locked in uid order, then the named pairs in id order. Returns the plan
    (what was recorded, per-batch deltas and outcome counts).
    """
    if not results:
        return PollPlan()
    cids = list({r.correlation_id for r in results})
    now = utcnow()
    async with db.sessions.begin() as session:
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
                    select(Batch).where(Batch.uid.in_(uids)).order_by(Batch.uid).with_for_update()
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
            )
            for row in rows
        }
        plan = plan_poll(results, views)
        for change in plan.updates:
            row = by_pair_id[change.pair_id]
            result = change.result
            row.status = PairStatus.SUCCEEDED if change.success else PairStatus.FAILED
            row.needs_retry = change.needs_retry
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
        for uid, delta in plan.deltas.items():
            batch = batches[uid]
            batch.completed += delta.completed
            batch.failed += delta.failed
            batch.cost_usd += delta.cost_usd
            batch.prompt_tokens += delta.prompt_tokens
            batch.completion_tokens += delta.completion_tokens
            batch.total_tokens += delta.total_tokens
            if delta.provider is not None:
                batch.provider, batch.model = delta.provider, delta.model
    return plan


# --- monitor --------------------------------------------------------------------------------------


async def close_overdue(db: Database, cutoff: datetime) -> dict[str, int]:
    """Close SUBMITTED pairs sent before `cutoff` as failed (OVERDUE; retry rule applied).

    Only batches that are running are touched. Returns closed pairs per batch uid.
    """
    async with db.sessions.begin() as session:
        uids = sorted(
            set(
                (
                    await session.execute(
                        select(ComparisonPair.batch_uid)
                        .join(Batch, Batch.uid == ComparisonPair.batch_uid)
                        .where(
                            ComparisonPair.status == PairStatus.SUBMITTED,
                            ComparisonPair.submitted_at < cutoff,
                            Batch.state.in_(_RUNNING),
                            Batch.deleted_at.is_(None),
                        )
                    )
                ).scalars()
            )
        )
    closed: dict[str, int] = {}
    now = utcnow()
    for uid in uids:
        async with db.sessions.begin() as session:
            batch = await lock_batch(session, uid)
            if batch is None or batch.state not in _RUNNING:
                continue
            rows = (
                (
                    await session.execute(
                        select(ComparisonPair)
                        .where(
                            ComparisonPair.batch_uid == uid,
                            ComparisonPair.status == PairStatus.SUBMITTED,
                            ComparisonPair.submitted_at < cutoff,
                        )
                        .order_by(ComparisonPair.id)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                row.status = PairStatus.FAILED
                row.error_code = OVERDUE_ERROR_CODE
                row.error_message = f"no callback by {cutoff.isoformat()}"
                row.completed_at = now
                row.needs_retry = should_retry(OVERDUE_ERROR_CODE, row.attempt, batch.max_retries)
            batch.failed += len(rows)
            if rows:
                closed[uid] = len(rows)
    return closed


_RUNNING = (
    BatchStateEnum.GENERATING_PAIRS,
    BatchStateEnum.WAITING_CALLBACKS,
    BatchStateEnum.SCORING,
)


async def unfinished_batches(db: Database) -> list[str]:
    """Uids of batches that are not finished and not deleted (INITIALIZING included)."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.uid).where(
                Batch.state.in_((BatchStateEnum.INITIALIZING, *_RUNNING)),
                Batch.deleted_at.is_(None),
            )
        )
        return list(rows.scalars())


async def followups_due(db: Database) -> list[str]:
    """Finished, not deleted batches whose results or completion event are still missing."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.uid).where(
                Batch.state.in_(
                    (BatchStateEnum.COMPLETED, BatchStateEnum.FAILED, BatchStateEnum.CANCELLED)
                ),
                or_(Batch.results_written_at.is_(None), Batch.completion_published_at.is_(None)),
            )
        )
        return list(rows.scalars())


async def count_by_state(db: Database) -> dict[BatchStateEnum, int]:
    """Batches (not deleted) per state."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.state, func.count())
            .where(Batch.deleted_at.is_(None))
            .group_by(Batch.state)
        )
        return {state: int(n) for state, n in rows.all()}


# --- scores, finishing, results ----------------------------------------------------------------


async def write_scores(
    session: AsyncSession, batch: Batch, fit: BradleyTerryFit, ledger: PairLedger
) -> None:
    """Replace the batch's scores with `fit` (ranks 1 = best, ties by essay order)."""
    n = len(fit.scores)
    comparisons = [0] * n
    wins = [0] * n
    for winner, loser in ledger.outcomes:
        comparisons[winner] += 1
        comparisons[loser] += 1
        wins[winner] += 1
    order = sorted(range(n), key=lambda i: (-fit.scores[i], i))
    rank = {idx: position + 1 for position, idx in enumerate(order)}
    await session.execute(delete(Score).where(Score.batch_uid == batch.uid))
    await session.execute(
        insert(Score),
        [
            {
                "batch_uid": batch.uid,
                "essay_idx": i,
                "score": fit.scores[i],
                "standard_error": fit.standard_errors[i],
                "rank": rank[i],
                "comparisons": comparisons[i],
                "wins": wins[i],
                "fitted_round": batch.round,
            }
            for i in range(n)
        ],
    )
    batch.reliability = fit.reliability


async def finish(
    session: AsyncSession, batch: Batch, state: BatchStateEnum, reason: str, message: str
) -> int:
    """Move a locked batch to a terminal state; comparisons still open are closed as failed.

    Returns how many open comparisons were closed (counted in `failed`).
    """
    now = utcnow()
    result = await session.execute(
        update(ComparisonPair)
        .where(ComparisonPair.batch_uid == batch.uid, ComparisonPair.status.in_(OPEN_STATUSES))
        .values(
            status=PairStatus.FAILED,
            error_code=ABANDONED_ERROR_CODE,
            error_message=f"batch finished ({reason}) before an answer came",
            needs_retry=False,
            completed_at=now,
        )
    )
    closed = int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
    batch.failed += closed
    batch.state = state
    batch.reason = reason
    batch.message = message
    batch.started_at = batch.started_at or now
    batch.finished_at = now
    return closed


async def cancel_batch(db: Database, uid: str, message: str) -> bool:
    """Finish an unfinished batch as CANCELLED; True when it changed."""
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None or batch.state.is_terminal:
            return False
        await finish(session, batch, BatchStateEnum.CANCELLED, REASON_CANCELLED, message)
        return True


async def forget_batch(db: Database, uid: str, *, delete_rows: bool) -> None:
    """A deleted CJBatch: remove its rows (cascading) or keep them marked deleted."""
    async with db.sessions.begin() as session:
        if delete_rows:
            await session.execute(delete(Batch).where(Batch.uid == uid))
            return
        batch = await lock_batch(session, uid)
        if batch is not None and batch.deleted_at is None:
            batch.deleted_at = utcnow()


async def result_rows(db: Database, uid: str) -> list[ResultRow]:
    """Every essay of the batch with its latest score, rank, comparisons and wins."""
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Essay, Score)
                .outerjoin(
                    Score, and_(Score.batch_uid == Essay.batch_uid, Score.essay_idx == Essay.idx)
                )
                .where(Essay.batch_uid == uid)
                .order_by(Essay.idx)
            )
        ).all()
    return [
        ResultRow(
            essay_id=essay.essay_id,
            score=score.score if score else None,
            standard_error=score.standard_error if score else None,
            rank=score.rank if score else None,
            comparisons=score.comparisons if score else 0,
            wins=score.wins if score else 0,
            metadata=dict(essay.meta or {}),
        )
        for essay, score in rows
    ]


async def finished_batch(db: Database, uid: str) -> FinishedBatch | None:
    """The completion event's view of a finished batch; None when unknown or unfinished."""
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        if batch is None or not batch.state.is_terminal:
            return None
        spec = batch_spec(batch)
        now = utcnow()
        return FinishedBatch(
            uid=batch.uid,
            namespace=batch.namespace,
            name=batch.name,
            state=batch.state,
            reason=batch.reason,
            essays=batch.essays_count,
            submitted=batch.submitted,
            completed=batch.completed,
            failed=batch.failed,
            rounds=batch.round,
            reliability=batch.reliability,
            provider=batch.provider or (spec.judge.provider or "default"),
            model=batch.model or (spec.judge.model or "default"),
            cost_usd=batch.cost_usd,
            total_tokens=batch.total_tokens,
            started_at=batch.started_at or batch.created_at or now,
            finished_at=batch.finished_at or now,
        )


async def mark_done(db: Database, uid: str, *, results: bool = False, event: bool = False) -> None:
    """Record that the results ConfigMap was written and/or the completion event published."""
    values: dict[str, Any] = {}
    if results:
        values["results_written_at"] = utcnow()
    if event:
        values["completion_published_at"] = utcnow()
    if not values:
        return
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None:
            return
        for key, value in values.items():
            if getattr(batch, key) is None:
                setattr(batch, key, value)


async def snapshot(db: Database, uid: str) -> BatchSnapshot | None:
    """The batch as the status is built from it (top 10 of the latest fit included)."""
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        if batch is None:
            return None
        top = (
            await session.execute(
                select(Essay.essay_id, Score.score, Score.standard_error, Score.rank)
                .join(Essay, and_(Essay.batch_uid == Score.batch_uid, Essay.idx == Score.essay_idx))
                .where(Score.batch_uid == uid)
                .order_by(Score.rank)
                .limit(TOP_ESSAYS)
            )
        ).all()
        finished_with_results = batch.results_written_at is not None
        return BatchSnapshot(
            uid=batch.uid,
            name=batch.name,
            namespace=batch.namespace,
            state=batch.state,
            suspended=batch.suspended,
            generation=batch.generation,
            essays=batch.essays_count,
            essays_loaded=batch.essays_count > 0
            or (batch.state != BatchStateEnum.INITIALIZING and batch.reason != "InvalidEssays"),
            budget=batch.budget,
            round=batch.round,
            submitted=batch.submitted,
            completed=batch.completed,
            failed=batch.failed,
            cost_usd=batch.cost_usd,
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=batch.completion_tokens,
            total_tokens=batch.total_tokens,
            reliability=batch.reliability,
            max_score_change=batch.max_score_change,
            reason=batch.reason,
            message=batch.message,
            started_at=batch.started_at,
            finished_at=batch.finished_at,
            results_config_map=(
                results_config_map_name(batch.name) if finished_with_results else None
            ),
            top=tuple(
                TopEssay(id=eid, score=s, standard_error=se, rank=r) for eid, s, se, r in top
            ),
            version=batch.version,
        )


async def batch_identity(db: Database, uid: str) -> tuple[str, str] | None:
    """(namespace, name) of a batch; None when unknown."""
    async with db.sessions() as session:
        row = (
            await session.execute(select(Batch.namespace, Batch.name).where(Batch.uid == uid))
        ).first()
        return None if row is None else (row[0], row[1])


def group_counts(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Sum counts per key."""
    total: dict[str, int] = defaultdict(int)
    for key, n in pairs:
        total[key] += n
    return dict(total)
