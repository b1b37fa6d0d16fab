"""A batch's own life outside the engine's steps: register, essays, spec updates, cancel,
delete, and the follow-up marks.

Transactions: each public function here is ONE transaction of its own: it takes the
`Database`, opens a transaction, locks the batch row (`SELECT ... FOR UPDATE`) and commits.
Each is idempotent: calling it again once it happened changes nothing. State changes go
through `cj_operator.lifecycle.transitions.move`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from cj_operator.clock import utcnow
from cj_operator.db.models import Batch, Essay
from cj_operator.db.rounds import finish, lock_batch
from cj_operator.db.session import Database
from cj_operator.lifecycle.reasons import Reason
from cj_operator.lifecycle.transitions import move
from cj_operator.limits import ResolvedLimits
from cj_operator.spec import CJBatchSpec
from cj_operator.spec import Essay as SpecEssay
from common_core import BatchStateEnum


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
        batch.budget = batch.parsed_spec().effective_budget(len(essays))
        batch.started_at = now
        if len(essays) < 2:
            move(
                batch,
                BatchStateEnum.COMPLETED,
                reason=Reason.INSUFFICIENT_ESSAYS,
                message=(
                    f"The batch has {len(essays)} essay{'s' if len(essays) != 1 else ''}; "
                    "at least 2 are needed to compare."
                ),
                now=now,
            )
        else:
            move(batch, BatchStateEnum.GENERATING_PAIRS, reason=None, message="", now=now)
        return batch.state


async def note_essays_problem(
    db: Database, uid: str, reason: Reason, message: str, *, fatal: bool
) -> None:
    """Record why the essays cannot be stored; `fatal` fails the batch (state FAILED)."""
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None or batch.state != BatchStateEnum.INITIALIZING:
            return
        target = BatchStateEnum.FAILED if fatal else BatchStateEnum.INITIALIZING
        if fatal or (batch.reason, batch.message) != (reason.value, message):
            move(batch, target, reason=reason, message=message, now=utcnow())


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


async def cancel_batch(db: Database, uid: str, message: str) -> bool:
    """Finish an unfinished batch as CANCELLED; True when it changed."""
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None or batch.state.is_terminal:
            return False
        await finish(session, batch, BatchStateEnum.CANCELLED, Reason.CANCELLED, message)
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


async def mark_done(
    db: Database,
    uid: str,
    *,
    results: bool = False,
    event: bool = False,
    comparisons: bool = False,
    results_blocked: str | None = None,
    comparisons_blocked: tuple[Reason, str] | None = None,
) -> None:
    """Record that the results ConfigMap was written (or, with `results_blocked`, why it could
    not be), that the comparisons ConfigMap was written (or, with `comparisons_blocked`, the
    reason and message why not), and/or that the completion event was published. What is
    recorded stays recorded."""
    values: dict[str, Any] = {}
    blocked: dict[str, dict[str, str | None]] = {}
    if results:
        values["results_written_at"] = utcnow()
        blocked["results_written_at"] = {"results_blocked": results_blocked}
    if comparisons:
        values["comparisons_written_at"] = utcnow()
        reason, message = comparisons_blocked or (None, None)
        blocked["comparisons_written_at"] = {
            "comparisons_blocked_reason": None if reason is None else reason.value,
            "comparisons_blocked": message,
        }
    if event:
        values["completion_published_at"] = utcnow()
    if not values:
        return
    async with db.sessions.begin() as session:
        batch = await lock_batch(session, uid)
        if batch is None:
            return
        for key, value in values.items():
            if getattr(batch, key) is not None:
                continue
            setattr(batch, key, value)
            for column, why in blocked.get(key, {}).items():
                setattr(batch, column, why)
