"""Comparison designs from the project's own pairing, shared by the scoring tests' simulations."""

from __future__ import annotations

import functools

from cj_operator.pairing.selection import select_pairs


@functools.cache
def balanced_design(n_items: int, rounds: int, seed: int) -> tuple[tuple[int, int], ...]:
    """``(slot_a, slot_b)`` pairs of ``rounds`` full rounds of :func:`select_pairs` without
    scores (non-adaptive): no repeated pair, every essay once per round, and every essay in
    slot A and slot B equally often (within one). Cached: about 1 s for 60 essays x 20 rounds."""
    history: list[tuple[int, int]] = []
    for round_number in range(rounds):
        history += select_pairs(
            n_items, None, history, n_items // 2, seed=1000 * seed + round_number
        )
    return tuple(history)
