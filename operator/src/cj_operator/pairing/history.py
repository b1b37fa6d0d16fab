"""What the comparisons made so far say about the next round: counts, slots, repeats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PairHistory", "summarise_history", "unused_pair_count"]


@dataclass(frozen=True)
class PairHistory:
    """Summary of every comparison already made or in flight for one batch.

    Attributes:
        n_items: number of essays; essays are indices ``0 .. n_items - 1``.
        comparisons: per essay, how many comparisons it takes part in.
        slot_balance: per essay, times in slot A minus times in slot B.
        pair_counts: per unordered pair ``(low, high)``, how often it was compared; pairs
            never compared are absent.
        pair_orientation: per unordered pair ``(low, high)``, times ``low`` sat in slot A
            minus times ``high`` sat in slot A.
        level: the fewest times any unordered pair has been compared: 0 until all
            ``n(n-1)/2`` pairs have been used once, then 1 until all have been used twice, ...
    """

    n_items: int
    comparisons: NDArray[np.int64]
    slot_balance: NDArray[np.int64]
    pair_counts: Counter[tuple[int, int]]
    pair_orientation: Counter[tuple[int, int]]
    level: int

    def times_compared(self, i: int, j: int) -> int:
        """How often essays ``i`` and ``j`` were compared, in either slot order."""
        return self.pair_counts.get(_key(i, j), 0)


def summarise_history(n_items: int, history: Sequence[tuple[int, int]]) -> PairHistory:
    """Count comparisons per essay, slot balance per essay, and uses per unordered pair.

    Args:
        n_items: number of essays, >= 0.
        history: ``(slot_a_index, slot_b_index)`` for every comparison made or in flight.

    Raises:
        ValueError: ``n_items`` < 0, or an entry that is not a pair of two different
            indices in ``range(n_items)`` (the message names its position).
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
        raise ValueError(f"n_items must be an integer >= 0, got {n_items!r}")
    comparisons = np.zeros(n_items, dtype=np.int64)
    slot_balance = np.zeros(n_items, dtype=np.int64)
    pair_counts: Counter[tuple[int, int]] = Counter()
    pair_orientation: Counter[tuple[int, int]] = Counter()
    for position, entry in enumerate(history):
        slot_a, slot_b = _checked_pair(n_items, position, entry)
        comparisons[slot_a] += 1
        comparisons[slot_b] += 1
        slot_balance[slot_a] += 1
        slot_balance[slot_b] -= 1
        key = _key(slot_a, slot_b)
        pair_counts[key] += 1
        pair_orientation[key] += 1 if slot_a == key[0] else -1
    total_pairs = n_items * (n_items - 1) // 2
    level = min(pair_counts.values()) if total_pairs and len(pair_counts) == total_pairs else 0
    return PairHistory(
        n_items=n_items,
        comparisons=comparisons,
        slot_balance=slot_balance,
        pair_counts=pair_counts,
        pair_orientation=pair_orientation,
        level=level,
    )


def unused_pair_count(n_items: int, history: Sequence[tuple[int, int]]) -> int:
    """How many of the ``n(n-1)/2`` unordered pairs have never been compared.

    A natural ``pairs_available`` for :func:`cj_operator.scoring.stopping.decide_stop` when a
    batch should not repeat pairs at all (an LLM judge at temperature 0 tends to repeat its
    answer). Raises ValueError like :func:`summarise_history`.
    """
    summary = summarise_history(n_items, history)
    return n_items * (n_items - 1) // 2 - len(summary.pair_counts)


def _checked_pair(n_items: int, position: int, entry: tuple[int, int]) -> tuple[int, int]:
    try:
        slot_a, slot_b = entry
    except (TypeError, ValueError):
        raise ValueError(
            f"history[{position}] must be a (slot_a_index, slot_b_index) pair, got {entry!r}"
        ) from None
    for slot, index in (("slot A", slot_a), ("slot B", slot_b)):
        if (
            isinstance(index, bool)
            or not isinstance(index, int | np.integer)
            or not 0 <= index < n_items
        ):
            raise ValueError(
                f"history[{position}] has {slot} index {index!r}, not an integer in "
                f"0..{n_items - 1}"
            )
    if slot_a == slot_b:
        raise ValueError(f"history[{position}] pairs essay {slot_a} with itself")
    return int(slot_a), int(slot_b)


def _key(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)
