"""metav1.Condition bookkeeping: a transition time changes only when the status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cj_operator.status.model import Condition, ConditionStatus


@dataclass(frozen=True)
class DesiredCondition:
    """What a condition should say now (its transition time is worked out by `merge`)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


def merge_conditions(
    previous: Sequence[Condition],
    desired: Sequence[DesiredCondition],
    *,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """The new conditions list, in `desired` order.

    `lastTransitionTime` is kept from `previous` when the condition's status is unchanged
    (reason and message may change without a transition) and set to `now` otherwise.
    Conditions absent from `desired` are dropped.
    """
    before = {c.type: c for c in previous}
    merged: list[Condition] = []
    for want in desired:
        old = before.get(want.type)
        since = old.last_transition_time if old is not None and old.status == want.status else now
        merged.append(
            Condition(
                type=want.type,
                status=want.status,
                reason=want.reason,
                message=want.message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return merged
