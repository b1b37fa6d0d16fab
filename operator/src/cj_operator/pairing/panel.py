"""Which panel judge answers each comparison of a round (pure).

A CJBatch with `spec.judges` (a panel) asks each comparison of one judge. The assignment keeps
three things balanced, in this order of weight:

1. each judge's share of all comparisons so far follows `spec.judges[].share`;
2. each essay meets every judge about equally often (so no essay's score rests on one judge's
   view, which is what lets a panel average judges' systematic views away);
3. each judge sees each essay in slot A and slot B about equally often (so a judge's position
   bias cancels per essay too).

Greedy and deterministic: the round's pairs are taken in order and each goes to the judge with
the lowest cost, ties to the lower index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["JudgeHistory", "assign_judges"]

_ESSAY_WEIGHT = 0.5
_SLOT_WEIGHT = 0.1


class JudgeHistory:
    """Counts of earlier assignments: per judge, per (essay, judge), per (essay, judge, slot)."""

    def __init__(self, n_judges: int) -> None:
        if n_judges < 1:
            raise ValueError(f"a panel needs at least one judge, got {n_judges}")
        self.n_judges = n_judges
        self.per_judge = [0] * n_judges
        self.per_essay: Counter[tuple[int, int]] = Counter()
        self.per_slot: Counter[tuple[int, int, int]] = Counter()

    def add(self, a: int, b: int, judge: int) -> None:
        """Record that `judge` compared essay `a` (slot A) with essay `b` (slot B)."""
        if not 0 <= judge < self.n_judges:
            raise ValueError(f"judge index {judge} is out of range for {self.n_judges} judges")
        self.per_judge[judge] += 1
        self.per_essay[(a, judge)] += 1
        self.per_essay[(b, judge)] += 1
        self.per_slot[(a, judge, 0)] += 1
        self.per_slot[(b, judge, 1)] += 1

    @classmethod
    def of(cls, n_judges: int, assigned: Sequence[tuple[int, int, int]]) -> JudgeHistory:
        """The history of `(slot_a_idx, slot_b_idx, judge_idx)` assignments."""
        history = cls(n_judges)
        for a, b, judge in assigned:
            history.add(a, b, judge)
        return history


def assign_judges(
    pairs: Sequence[tuple[int, int]], shares: Sequence[float], history: JudgeHistory
) -> list[int]:
    """One judge index per pair (module docstring); `history` is updated in place.

    Args:
        pairs: the round's `(slot_a_idx, slot_b_idx)` pairs, in order.
        shares: each judge's relative share of comparisons, > 0 (normalised here).
        history: the batch's earlier assignments (:meth:`JudgeHistory.of`).

    Returns:
        `judge_idx` per pair, in 0 .. len(shares) - 1.

    Raises:
        ValueError: `shares` is empty, does not match the history, or holds a value <= 0.
    """
    if not shares or len(shares) != history.n_judges:
        raise ValueError(
            f"shares ({len(shares)}) must name every judge of the history ({history.n_judges})"
        )
    if not all(s > 0 for s in shares):
        raise ValueError(f"every share must be > 0, got {list(shares)}")
    total_share = sum(shares)
    weights = [s / total_share for s in shares]
    chosen: list[int] = []
    for a, b in pairs:
        total = sum(history.per_judge) + 1
        best = min(
            range(history.n_judges),
            key=lambda k: (
                (history.per_judge[k] + 1 - weights[k] * total)
                + _ESSAY_WEIGHT * (history.per_essay[(a, k)] + history.per_essay[(b, k)])
                + _SLOT_WEIGHT * (history.per_slot[(a, k, 0)] + history.per_slot[(b, k, 1)]),
                k,
            ),
        )
        history.add(a, b, best)
        chosen.append(best)
    return chosen
