"""The batch state machine: which state changes are allowed, and the one way to make one.

Every write of a batch's state goes through :func:`move` (the database modules call it on
the locked row), so an illegal change raises instead of corrupting a batch. The table:

- INITIALIZING -> INITIALIZING (a problem noted), GENERATING_PAIRS (essays stored),
  COMPLETED (fewer than 2 essays), FAILED (invalid essays, timeout), CANCELLED
- GENERATING_PAIRS -> WAITING_CALLBACKS (first round stored), SCORING, FAILED, CANCELLED
- WAITING_CALLBACKS -> WAITING_CALLBACKS (next round), SCORING, FAILED, CANCELLED
- SCORING -> COMPLETED, FAILED, CANCELLED
- COMPLETED, FAILED, CANCELLED -> nothing (terminal)
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cj_operator.lifecycle.reasons import Reason
from common_core import BatchStateEnum

_S = BatchStateEnum

ALLOWED: dict[BatchStateEnum, frozenset[BatchStateEnum]] = {
    _S.INITIALIZING: frozenset(
        {_S.INITIALIZING, _S.GENERATING_PAIRS, _S.COMPLETED, _S.FAILED, _S.CANCELLED}
    ),
    _S.GENERATING_PAIRS: frozenset({_S.WAITING_CALLBACKS, _S.SCORING, _S.FAILED, _S.CANCELLED}),
    _S.WAITING_CALLBACKS: frozenset({_S.WAITING_CALLBACKS, _S.SCORING, _S.FAILED, _S.CANCELLED}),
    _S.SCORING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}
"""For each state, the states a batch may move to from it."""


class IllegalTransitionError(ValueError):
    """A state change the table does not allow (a bug in the caller, never user input)."""


class BatchRow(Protocol):
    """The fields of a batch that a transition writes (`cj_operator.db.models.Batch`)."""

    state: BatchStateEnum
    reason: str
    message: str
    started_at: datetime | None
    finished_at: datetime | None


def check(current: BatchStateEnum, target: BatchStateEnum) -> None:
    """Raise IllegalTransitionError unless `current -> target` is in the table."""
    if target not in ALLOWED[current]:
        raise IllegalTransitionError(f"a batch cannot move from {current.value} to {target.value}")


def move(
    batch: BatchRow,
    target: BatchStateEnum,
    *,
    reason: Reason | None,
    message: str,
    now: datetime,
) -> None:
    """Move `batch` to `target` and record why (`reason` None clears reason and message).

    A terminal target sets `finished_at` (and `started_at` when the batch never started).

    Raises:
        IllegalTransitionError: `batch.state -> target` is not allowed.
    """
    check(batch.state, target)
    batch.state = target
    batch.reason = "" if reason is None else reason.value
    batch.message = message if reason is not None else ""
    if target.is_terminal:
        batch.started_at = batch.started_at or now
        batch.finished_at = now
