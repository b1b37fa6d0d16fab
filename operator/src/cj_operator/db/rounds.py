"""The work of one engine step on a locked batch: rounds, retries, submissions, scores, finish.

Transactions: every function here runs inside the CALLER's transaction, on a batch row the
caller has locked with :func:`lock_batch` (`SELECT ... FOR UPDATE`); nothing here opens or
commits one. Pair rows are locked after their batch, in id order, so the callback consumer,
the engine and the monitor never deadlock. State changes go through
`cj_operator.lifecycle.transitions.move`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cj_operator.accounting import OVERDUE_ERROR_CODE, retry_delay, should_retry
from cj_operator.clock import utcnow
from cj_operator.costing import Calibration, CostModel, Headroom
from cj_operator.db.models import Batch, ComparisonPair, Essay, PairStatus, Score
from cj_operator.lifecycle.reasons import Reason
from cj_operator.lifecycle.transitions import move
from cj_operator.scoring.bradley_terry import BradleyTerryFit
from cj_operator.scoring.diagnostics import Diagnostics
from cj_operator.scoring.grades import ANCHOR_GRADE_KEY, GradeProjection
from cj_operator.spec import Judge
from common_core import BatchStateEnum

OPEN_STATUSES = (PairStatus.PENDING, PairStatus.SUBMITTED)
"""Pair statuses without an answer yet."""
ABANDONED_ERROR_CODE = "CJ_BATCH_FINISHED"
"""`error_code` of a comparison still open when its batch finished (timeout, cancel)."""
REFUSED_PREFIX = "refused: "
"""Prefix of `error_message` for a comparison the provider API refused."""


async def lock_batch(session: AsyncSession, uid: str) -> Batch | None:
    """The batch row, locked until the transaction ends; None when unknown."""
    result = await session.execute(select(Batch).where(Batch.uid == uid).with_for_update())
    return result.scalar_one_or_none()


def _awaiting_retry(uid: str) -> tuple[ColumnElement[bool], ...]:
    return (
        ComparisonPair.batch_uid == uid,
        ComparisonPair.status == PairStatus.FAILED,
        ComparisonPair.needs_retry.is_(True),
        ComparisonPair.retried.is_(False),
    )


def retry_not_before(now: datetime, delay_seconds: float) -> datetime | None:
    """When a failed comparison may be re-submitted; None for at once."""
    return now + timedelta(seconds=delay_seconds) if delay_seconds > 0 else None


async def create_retries(
    session: AsyncSession,
    batch: Batch,
    costs: CostModel | None = None,
    headroom: Headroom | None = None,
) -> int:
    """New rows (attempt + 1, new correlation id) for failed pairs awaiting a retry whose
    `retry_not_before` has passed, each reserving its cost again (`costs`) when it fits in
    `headroom`; one that does not fit keeps waiting (see :func:`drop_retries`).

    Counts the new rows in `submitted`. Returns how many.
    """
    due = or_(
        ComparisonPair.retry_not_before.is_(None), ComparisonPair.retry_not_before <= utcnow()
    )
    rows = (
        (
            await session.execute(
                select(ComparisonPair)
                .where(*_awaiting_retry(batch.uid), due)
                .order_by(ComparisonPair.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    created = 0
    for row in rows:
        estimate = costs.estimate(row.essay_a_idx, row.essay_b_idx) if costs else 0.0
        reserved = costs.reserve(estimate) if costs else 0.0
        if headroom is not None and not headroom.take(reserved):
            continue
        row.retried = True
        created += 1
        session.add(
            ComparisonPair(
                batch_uid=batch.uid,
                correlation_id=uuid.uuid4(),
                round=row.round,
                attempt=row.attempt + 1,
                retry_of_id=row.id,
                essay_a_idx=row.essay_a_idx,
                essay_b_idx=row.essay_b_idx,
                judge_idx=row.judge_idx,
                status=PairStatus.PENDING,
                estimate_usd=estimate,
                reserved_usd=reserved,
            )
        )
    batch.submitted += created
    return created


async def has_due_retries(session: AsyncSession, uid: str) -> bool:
    """True when a failed pair of the batch awaits a retry whose time has come."""
    due = or_(
        ComparisonPair.retry_not_before.is_(None), ComparisonPair.retry_not_before <= utcnow()
    )
    result = await session.execute(
        select(ComparisonPair.id).where(*_awaiting_retry(uid), due).limit(1)
    )
    return result.first() is not None


async def next_retry_at(session: AsyncSession, uid: str) -> datetime | None:
    """The earliest `retry_not_before` of the batch's failed pairs still awaiting a retry;
    None when none waits (a round with such a pair is not settled)."""
    result = await session.execute(
        select(func.min(ComparisonPair.retry_not_before)).where(*_awaiting_retry(uid))
    )
    value: datetime | None = result.scalar_one()
    return value


async def drop_retries(session: AsyncSession, batch: Batch, *, due_only: bool = False) -> int:
    """Make awaiting retries final failures (no more submissions, e.g. cost limit reached);
    with `due_only`, only those whose `retry_not_before` has passed. Returns how many."""
    where = list(_awaiting_retry(batch.uid))
    if due_only:
        where.append(
            or_(
                ComparisonPair.retry_not_before.is_(None),
                ComparisonPair.retry_not_before <= utcnow(),
            )
        )
    result = await session.execute(update(ComparisonPair).where(*where).values(needs_retry=False))
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


async def count_open(session: AsyncSession, uid: str) -> int:
    """Pairs of the batch without an answer (PENDING or SUBMITTED)."""
    result = await session.execute(
        select(func.count())
        .select_from(ComparisonPair)
        .where(ComparisonPair.batch_uid == uid, ComparisonPair.status.in_(OPEN_STATUSES))
    )
    return int(result.scalar_one())


async def reserved_usd(session: AsyncSession, uid: str) -> float:
    """USD reserved by the batch's comparisons in flight (PENDING or SUBMITTED)."""
    result = await session.execute(
        select(func.coalesce(func.sum(ComparisonPair.reserved_usd), 0.0)).where(
            ComparisonPair.batch_uid == uid, ComparisonPair.status.in_(OPEN_STATUSES)
        )
    )
    return float(result.scalar_one())


async def cost_calibration(session: AsyncSession, uid: str) -> Calibration:
    """The largest actual/estimate cost ratio of the batch's answered comparisons that used
    tokens and had an estimate, and how many there are (`cj_operator.costing.calibration`)."""
    result = await session.execute(
        select(func.max(ComparisonPair.cost_usd / ComparisonPair.estimate_usd), func.count()).where(
            ComparisonPair.batch_uid == uid,
            ComparisonPair.status.in_((PairStatus.SUCCEEDED, PairStatus.FAILED)),
            ComparisonPair.total_tokens > 0,
            ComparisonPair.estimate_usd > 0,
        )
    )
    factor, answers = result.one()
    return Calibration(None if factor is None else float(factor), int(answers))


async def essay_chars(session: AsyncSession, uid: str) -> list[int]:
    """Characters of each essay of the batch, in essay order (index = `idx`)."""
    rows = (
        await session.execute(
            select(Essay.idx, func.char_length(Essay.text))
            .where(Essay.batch_uid == uid)
            .order_by(Essay.idx)
        )
    ).all()
    chars = [0] * (max((idx for idx, _ in rows), default=-1) + 1)
    for idx, length in rows:
        chars[idx] = int(length)
    return chars


@dataclass(frozen=True)
class PairLedger:
    """A batch's comparisons as the round-end decision sees them.

    `history`: (slot_a_idx, slot_b_idx) of every first attempt; `outcomes`: (winner_idx,
    loser_idx) of every comparison with a winner; `final_failures`: failed with no retry left;
    `judged`: (slot_a_idx, slot_b_idx, a_won, "provider/model") of every comparison with a
    winner, in the same order as `outcomes`; `assignments`: (slot_a_idx, slot_b_idx, judge_idx)
    of every first attempt, in the order of `history` (the panel judge each pair was asked of).
    """

    history: list[tuple[int, int]]
    outcomes: list[tuple[int, int]]
    final_failures: int
    judged: list[tuple[int, int, bool, str]] = field(default_factory=list)
    assignments: list[tuple[int, int, int]] = field(default_factory=list)


async def pair_ledger(
    session: AsyncSession, uid: str, panel: Sequence[Judge] | None = None
) -> PairLedger:
    """First attempts (history), winners (outcomes) and final failures of a batch.

    A verdict's judge key (`judged`) is `provider/model` of the batch's panel judge that was
    asked (`panel[judge_idx]`, the spec's word), a field the spec leaves unset taken from the
    result; with two panel judges of the same name the key ends in `#<index>`.
    """
    rows = (
        await session.execute(
            select(
                ComparisonPair.essay_a_idx,
                ComparisonPair.essay_b_idx,
                ComparisonPair.attempt,
                ComparisonPair.status,
                ComparisonPair.winner,
                ComparisonPair.needs_retry,
                ComparisonPair.provider,
                ComparisonPair.model,
                ComparisonPair.judge_idx,
            )
            .where(ComparisonPair.batch_uid == uid)
            .order_by(ComparisonPair.id)
        )
    ).all()
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    judged: list[tuple[int, int, bool, str]] = []
    assignments: list[tuple[int, int, int]] = []
    final_failures = 0
    for a, b, attempt, status, winner, needs_retry, provider, model, judge_idx in rows:
        if attempt == 1:
            history.append((a, b))
            assignments.append((a, b, judge_idx))
        if status == PairStatus.SUCCEEDED:
            a_won = winner == "essay_a"
            outcomes.append((a, b) if a_won else (b, a))
            judged.append((a, b, a_won, judge_key(panel, judge_idx, provider, model)))
        elif status == PairStatus.FAILED and not needs_retry:
            final_failures += 1
    return PairLedger(history, outcomes, final_failures, judged, assignments)


async def previous_scores(session: AsyncSession, uid: str, n_items: int) -> list[float] | None:
    """The last fit's scores in essay order (logits); None before the first fit."""
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
    session: AsyncSession,
    batch: Batch,
    round_number: int,
    pairs: Iterable[tuple[int, int]],
    judges: Sequence[int] | None = None,
    costs: Sequence[tuple[float, float]] = (),
) -> int:
    """Store a new round's pairs (PENDING, attempt 1), count them submitted; returns how many.

    `judges` gives each pair's panel judge index (`spec.judges[]`); None: judge 0 for all.
    `costs`: (estimate_usd, reserved_usd) per pair, in order (empty: nothing reserved).
    Moves the batch to WAITING_CALLBACKS (raises IllegalTransitionError from a state that
    cannot plan a round).
    """
    pairs = list(pairs)
    judges = [0] * len(pairs) if judges is None else list(judges)
    if len(judges) != len(pairs):
        raise ValueError(f"{len(judges)} judge indices for {len(pairs)} pairs")
    if costs and len(costs) != len(pairs):
        raise ValueError(f"{len(costs)} costs for {len(pairs)} pairs")
    rows = [
        {
            "batch_uid": batch.uid,
            "correlation_id": uuid.uuid4(),
            "round": round_number,
            "attempt": 1,
            "essay_a_idx": a,
            "essay_b_idx": b,
            "judge_idx": judge,
            "status": PairStatus.PENDING,
            "needs_retry": False,
            "retried": False,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost_usd": 0.0,
            "estimate_usd": costs[i][0] if costs else 0.0,
            "reserved_usd": costs[i][1] if costs else 0.0,
        }
        for i, ((a, b), judge) in enumerate(zip(pairs, judges, strict=True))
    ]
    move(batch, BatchStateEnum.WAITING_CALLBACKS, reason=None, message="", now=utcnow())
    if rows:
        await session.execute(insert(ComparisonPair), rows)
    batch.round = round_number
    batch.submitted += len(rows)
    return len(rows)


@dataclass(frozen=True)
class Refusal:
    """The provider API refused one request of a bulk submission."""

    pair_id: int
    error_code: str
    message: str


async def record_submission(
    session: AsyncSession,
    batch: Batch,
    queued: Sequence[int],
    refused: Sequence[Refusal],
    retry_backoff_seconds: float = 0.0,
) -> int:
    """Mark queued pairs SUBMITTED and refused ones FAILED (retry rule applied; a retry waits
    `accounting.retry_delay` with `retry_backoff_seconds`).

    Only pairs still PENDING change (a callback may have answered one already). Returns
    how many refused pairs await a retry.
    """
    now = utcnow()
    if queued:
        await session.execute(
            update(ComparisonPair)
            .where(ComparisonPair.id.in_(queued), ComparisonPair.status == PairStatus.PENDING)
            .values(status=PairStatus.SUBMITTED, submitted_at=now)
        )
    if not refused:
        return 0
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
    retries = 0
    for row in rows:
        refusal = by_id[row.id]
        row.status = PairStatus.FAILED
        row.error_code = refusal.error_code
        row.error_message = REFUSED_PREFIX + refusal.message
        row.completed_at = now
        row.needs_retry = should_retry(refusal.error_code, row.attempt, batch.max_retries)
        if row.needs_retry:
            delay = retry_delay(None, row.attempt, retry_backoff_seconds)
            row.retry_not_before = retry_not_before(now, delay)
        retries += row.needs_retry
    batch.failed += len(rows)
    return retries


async def close_overdue(session: AsyncSession, batch: Batch, cutoff: datetime) -> int:
    """Close the batch's SUBMITTED pairs sent before `cutoff` as failed (OVERDUE; retry rule
    applied); returns how many (counted in `failed`)."""
    rows = (
        (
            await session.execute(
                select(ComparisonPair)
                .where(
                    ComparisonPair.batch_uid == batch.uid,
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
    now = utcnow()
    for row in rows:
        row.status = PairStatus.FAILED
        row.error_code = OVERDUE_ERROR_CODE
        row.error_message = f"no callback by {cutoff.isoformat()}"
        row.completed_at = now
        row.needs_retry = should_retry(OVERDUE_ERROR_CODE, row.attempt, batch.max_retries)
    batch.failed += len(rows)
    return len(rows)


async def write_scores(
    session: AsyncSession,
    batch: Batch,
    fit: BradleyTerryFit,
    ledger: PairLedger,
    diagnostics: Diagnostics | None = None,
) -> None:
    """Replace the batch's scores with `fit` (ranks 1 = best, ties by essay order), with the
    fit's reliabilities and, when given, the order effect and misfit of `diagnostics`."""
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
                "infit": _essay_fit(diagnostics, i, "infit"),
                "outfit": _essay_fit(diagnostics, i, "outfit"),
                "fitted_round": batch.round,
            }
            for i in range(n)
        ],
    )
    batch.reliability = fit.reliability
    batch.ssr = fit.ssr
    batch.fitted_results = len(ledger.outcomes)
    effect = diagnostics.order if diagnostics is not None else None
    batch.order_effect = effect.order_effect if effect is not None else None
    batch.order_effect_se = effect.standard_error if effect is not None else None
    batch.order_effect_p = effect.p_value if effect is not None else None
    batch.judge_fit = (
        [
            {
                "judge": j.judge,
                "comparisons": j.comparisons,
                "infit": _finite(j.infit),
                "outfit": _finite(j.outfit),
                "agreement": _finite(j.agreement),
                "order_effect": _finite(j.order_effect),
                "order_effect_se": _finite(j.order_effect_se),
            }
            for j in diagnostics.judges
        ]
        if diagnostics is not None
        else None
    )


def judge_key(
    panel: Sequence[Judge] | None, idx: int, provider: str | None, model: str | None
) -> str:
    """`provider/model` of panel judge `idx` (the spec's word; what it leaves unset from the
    answer), `#<idx>` appended when two panel judges share the name: the key of summary.json's
    judges and of comparisons.csv's `judge` column."""
    asked = panel[idx] if panel is not None and 0 <= idx < len(panel) else None
    if asked is not None:
        provider = asked.provider.value if asked.provider is not None else provider
        model = asked.model or model
    key = f"{provider or 'unknown'}/{model or 'unknown'}"
    if panel is not None and len(panel) > 1:
        names = [(j.provider, j.model) for j in panel]
        if asked is not None and names.count((asked.provider, asked.model)) > 1:
            key += f"#{idx}"
    return key


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: None instead."""
    return float(value) if math.isfinite(value) else None


def _essay_fit(diagnostics: Diagnostics | None, idx: int, which: str) -> float | None:
    if diagnostics is None or diagnostics.essays[idx] is None:
        return None
    value = getattr(diagnostics.essays[idx], which)
    return float(value) if math.isfinite(value) else None


async def finish(
    session: AsyncSession, batch: Batch, state: BatchStateEnum, reason: Reason, message: str
) -> int:
    """Move the batch to a terminal state; comparisons still open are closed as failed.

    Returns how many open comparisons were closed (counted in `failed`). Raises
    IllegalTransitionError when the batch is already finished.
    """
    now = utcnow()
    move(batch, state, reason=reason, message=message, now=now)
    result = await session.execute(
        update(ComparisonPair)
        .where(ComparisonPair.batch_uid == batch.uid, ComparisonPair.status.in_(OPEN_STATUSES))
        .values(
            status=PairStatus.FAILED,
            error_code=ABANDONED_ERROR_CODE,
            error_message=f"batch finished ({reason.value}) before an answer came",
            needs_retry=False,
            completed_at=now,
        )
    )
    closed = int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
    batch.failed += closed
    return closed


async def anchor_grades(session: AsyncSession, uid: str) -> dict[int, float]:
    """Essay index -> known grade of the batch's anchors (`metadata.anchorGrade`, a number;
    the spec refuses anything else)."""
    rows = await session.execute(
        select(Essay.idx, Essay.meta[ANCHOR_GRADE_KEY].as_float()).where(
            Essay.batch_uid == uid, Essay.meta.has_key(ANCHOR_GRADE_KEY)
        )
    )
    return {idx: grade for idx, grade in rows.all() if grade is not None}


async def write_grades(
    session: AsyncSession, batch: Batch, projection: GradeProjection | None
) -> None:
    """Store each essay's projected grade and the batch's grade model (None clears them)."""
    batch.grade_model = projection.summary() if projection is not None else None
    if projection is None:
        return
    for idx, grade in enumerate(projection.essays):
        if grade is None:
            continue
        await session.execute(
            update(Score)
            .where(Score.batch_uid == batch.uid, Score.essay_idx == idx)
            .values(
                projected_grade=grade.grade,
                grade_low=grade.low,
                grade_high=grade.high,
                grade_expected=grade.expected,
            )
        )
