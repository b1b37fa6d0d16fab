"""What the operator reads without changing anything: snapshots for the status, result rows,
the completion event's view, the monitor's queries and the engine's send context.

Transactions: each function here opens its OWN short read-only session (takes the
`Database`), writes nothing and locks nothing; a caller that needs a consistent view under the
batch lock uses the functions of `cj_operator.db.rounds` inside its transaction instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from cj_operator.clock import utcnow
from cj_operator.comparison_requests import EssayRecord, PairToSend
from cj_operator.db.models import Batch, ComparisonPair, Essay, PairStatus, Score
from cj_operator.db.rounds import judge_key
from cj_operator.db.session import Database
from cj_operator.evidence import ComparisonRow, comparisons_config_map_name
from cj_operator.lifecycle.reasons import Reason
from cj_operator.results import FinishedBatch, ResultRow, results_config_map_name
from cj_operator.scoring.misfit import OUTFIT_THRESHOLD
from cj_operator.scoring.order_effect import SIGNIFICANCE_LEVEL
from cj_operator.spec import CJBatchSpec
from cj_operator.status.build import BatchSnapshot
from cj_operator.status.model import (
    TOP_ESSAYS,
    GradeCount,
    Grades,
    JudgeSummary,
    OrderEffect,
    TopEssay,
)
from common_core import BatchStateEnum

RUNNING = (
    BatchStateEnum.GENERATING_PAIRS,
    BatchStateEnum.WAITING_CALLBACKS,
    BatchStateEnum.SCORING,
)
"""States in which a batch has comparisons in flight or about to be."""
_TIMING_OUT = (
    BatchStateEnum.INITIALIZING,
    BatchStateEnum.GENERATING_PAIRS,
    BatchStateEnum.WAITING_CALLBACKS,
)
_TERMINAL = (BatchStateEnum.COMPLETED, BatchStateEnum.FAILED, BatchStateEnum.CANCELLED)


# --- the monitor ----------------------------------------------------------------------------


async def unfinished_batches(db: Database) -> list[str]:
    """Uids of batches that are not finished and not deleted (INITIALIZING included)."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.uid).where(
                Batch.state.in_((BatchStateEnum.INITIALIZING, *RUNNING)),
                Batch.deleted_at.is_(None),
            )
        )
        return list(rows.scalars())


async def followups_due(db: Database) -> list[str]:
    """Finished batches whose results, comparisons or completion event are still missing."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.uid).where(
                Batch.state.in_(_TERMINAL),
                or_(
                    Batch.results_written_at.is_(None),
                    Batch.comparisons_written_at.is_(None),
                    Batch.completion_published_at.is_(None),
                ),
            )
        )
        return list(rows.scalars())


async def past_deadline(db: Database, now: datetime) -> list[str]:
    """Uids of batches not yet scoring or finished whose deadline is before `now`."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.uid).where(
                Batch.deadline_at < now,
                Batch.deleted_at.is_(None),
                Batch.state.in_(_TIMING_OUT),
            )
        )
        return list(rows.scalars())


async def with_overdue_pairs(db: Database, cutoff: datetime) -> list[str]:
    """Uids (sorted) of running batches with a SUBMITTED pair sent before `cutoff`."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(ComparisonPair.batch_uid)
            .join(Batch, Batch.uid == ComparisonPair.batch_uid)
            .where(
                ComparisonPair.status == PairStatus.SUBMITTED,
                ComparisonPair.submitted_at < cutoff,
                Batch.state.in_(RUNNING),
                Batch.deleted_at.is_(None),
            )
            .distinct()
        )
        return sorted(rows.scalars())


async def count_by_state(db: Database) -> dict[BatchStateEnum, int]:
    """Batches (not deleted) per state."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Batch.state, func.count())
            .where(Batch.deleted_at.is_(None))
            .group_by(Batch.state)
        )
        return {state: int(n) for state, n in rows.all()}


# --- the engine -----------------------------------------------------------------------------


async def sendable_spec(db: Database, uid: str) -> CJBatchSpec | None:
    """The spec of a batch that may submit now; None when unknown, suspended or finished."""
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        if batch is None or batch.suspended or batch.state.is_terminal:
            return None
        return batch.parsed_spec()


async def pending_pairs(db: Database, uid: str, limit: int) -> list[PairToSend]:
    """Up to `limit` PENDING pairs of a batch (not yet confirmed by the provider API), in id
    order, with their essays."""
    essay_a = aliased(Essay)
    essay_b = aliased(Essay)
    async with db.sessions() as session:
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
            judge_idx=pair.judge_idx,
        )
        for pair, a, b in rows
    ]


@dataclass(frozen=True)
class FollowupsDue:
    """What a finished batch still owes: the results and comparisons ConfigMaps and/or the
    completion event."""

    results: bool
    event: bool
    deleted: bool
    comparisons: bool = False


async def followups_of(db: Database, uid: str) -> FollowupsDue | None:
    """What a finished batch still owes; None when the batch is unknown."""
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        if batch is None:
            return None
        return FollowupsDue(
            results=batch.results_written_at is None,
            event=batch.completion_published_at is None,
            deleted=batch.deleted_at is not None,
            comparisons=batch.comparisons_written_at is None,
        )


async def is_unfinished(db: Database, uid: str) -> bool:
    """True when the batch is known and not COMPLETED, FAILED or CANCELLED."""
    async with db.sessions() as session:
        state = (await session.execute(select(Batch.state).where(Batch.uid == uid))).scalar()
        return state is not None and not state.is_terminal


async def batch_identity(db: Database, uid: str) -> tuple[str, str] | None:
    """(namespace, name) of a batch; None when unknown."""
    async with db.sessions() as session:
        row = (
            await session.execute(select(Batch.namespace, Batch.name).where(Batch.uid == uid))
        ).first()
        return None if row is None else (row[0], row[1])


# --- results and status ---------------------------------------------------------------------


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
            infit=score.infit if score else None,
            outfit=score.outfit if score else None,
            projected_grade=score.projected_grade if score else None,
            grade_low=score.grade_low if score else None,
            grade_high=score.grade_high if score else None,
        )
        for essay, score in rows
    ]


async def comparison_rows(db: Database, uid: str) -> list[ComparisonRow]:
    """Every comparison request of the batch (retries included), in the order they were
    created, with its essays' ids in slot order, its panel judge (the key summary.json's
    judges use) and its answer; [] for an unknown batch."""
    essay_a = aliased(Essay)
    essay_b = aliased(Essay)
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        panel = batch.parsed_spec().panel() if batch is not None else None
        rows = (
            await session.execute(
                select(ComparisonPair, essay_a.essay_id, essay_b.essay_id)
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
                .where(ComparisonPair.batch_uid == uid)
                .order_by(ComparisonPair.id)
            )
        ).all()
    return [
        ComparisonRow(
            round=pair.round,
            attempt=pair.attempt,
            essay_a_id=a_id,
            essay_b_id=b_id,
            winner=pair.winner,
            confidence=pair.confidence,
            judge=judge_key(panel, pair.judge_idx, pair.provider, pair.model),
            provider=pair.provider,
            model=pair.model,
            cost_usd=pair.cost_usd,
            total_tokens=pair.total_tokens,
            status=pair.status.value,
            error_code=pair.error_code,
            justification=pair.justification,
            correlation_id=str(pair.correlation_id),
            completed_at=pair.completed_at,
        )
        for pair, a_id, b_id in rows
    ]


async def finished_batch(db: Database, uid: str) -> FinishedBatch | None:
    """The completion event's view of a finished batch; None when unknown or unfinished."""
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        if batch is None or not batch.state.is_terminal:
            return None
        spec = batch.parsed_spec()
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
            ssr=batch.ssr,
            order_effect=batch.order_effect,
            order_effect_se=batch.order_effect_se,
            order_effect_p=batch.order_effect_p,
            judges=list(batch.judge_fit or []),
            grade_model=batch.grade_model,
            # The judge as the spec names it, never as a result claims it.
            provider=spec.judge.provider or "default",
            model=spec.judge.model or "default",
            cost_usd=batch.cost_usd,
            total_tokens=batch.total_tokens,
            started_at=batch.started_at or batch.created_at or now,
            finished_at=batch.finished_at or now,
        )


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
        misfitting = (
            await session.execute(
                select(func.count())
                .select_from(Score)
                .where(Score.batch_uid == uid, Score.outfit > OUTFIT_THRESHOLD)
            )
        ).scalar_one()
        reserved = (
            await session.execute(
                select(func.coalesce(func.sum(ComparisonPair.reserved_usd), 0.0)).where(
                    ComparisonPair.batch_uid == uid,
                    ComparisonPair.status.in_((PairStatus.PENDING, PairStatus.SUBMITTED)),
                )
            )
        ).scalar_one()
        finished_with_results = (
            batch.results_written_at is not None and batch.results_blocked is None
        )
        with_comparisons = (
            batch.comparisons_written_at is not None and batch.comparisons_blocked is None
        )
        return BatchSnapshot(
            uid=batch.uid,
            name=batch.name,
            namespace=batch.namespace,
            state=batch.state,
            suspended=batch.suspended,
            generation=batch.generation,
            essays=batch.essays_count,
            essays_loaded=batch.essays_count > 0
            or (
                batch.state != BatchStateEnum.INITIALIZING and batch.reason != Reason.INVALID_ESSAYS
            ),
            budget=batch.budget,
            round=batch.round,
            submitted=batch.submitted,
            completed=batch.completed,
            failed=batch.failed,
            cost_usd=batch.cost_usd,
            reserved_usd=float(reserved),
            late_results=batch.late_results,
            late_cost_usd=batch.late_cost_usd,
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=batch.completion_tokens,
            total_tokens=batch.total_tokens,
            reliability=batch.reliability,
            ssr=batch.ssr,
            max_score_change=batch.max_score_change,
            score_change_se=batch.score_change_se,
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
            order_effect=_order_effect(batch),
            grades=_grades(batch),
            judges=tuple(_judge(j) for j in batch.judge_fit or []),
            misfitting_essays=int(misfitting),
            results_blocked=batch.results_blocked,
            comparisons_config_map=(
                comparisons_config_map_name(batch.name) if with_comparisons else None
            ),
            comparisons_blocked=(
                None
                if batch.comparisons_blocked is None
                else (batch.comparisons_blocked_reason or "", batch.comparisons_blocked)
            ),
        )


def _judge(entry: dict[str, Any]) -> JudgeSummary:
    def number(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else round(float(value), 4)

    return JudgeSummary(
        judge=str(entry.get("judge", "unknown")),
        comparisons=int(entry.get("comparisons", 0)),
        agreement=number("agreement"),
        order_effect=number("order_effect"),
        order_effect_se=number("order_effect_se"),
        infit=number("infit"),
        outfit=number("outfit"),
    )


def _grades(batch: Batch) -> Grades | None:
    model = batch.grade_model
    if not model:
        return None
    return Grades(
        anchors=int(model["anchors"]),
        distribution=[
            GradeCount(grade=float(d["grade"]), essays=int(d["essays"]))
            for d in model["distribution"]
        ],
    )


def _order_effect(batch: Batch) -> OrderEffect | None:
    if batch.order_effect is None or batch.order_effect_se is None or batch.order_effect_p is None:
        return None
    return OrderEffect(
        estimate=round(batch.order_effect, 4),
        standard_error=round(batch.order_effect_se, 4),
        p_value=round(batch.order_effect_p, 6),
        significant=batch.order_effect_p < SIGNIFICANCE_LEVEL,
    )
