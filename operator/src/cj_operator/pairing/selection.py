"""Choose the next round of comparisons: a maximum-weight matching of the essays.

One round pairs each essay at most once. The pairs come from a maximum-weight,
maximum-cardinality matching (Edmonds' blossom algorithm as implemented by networkx, after
Galil, 1986, ACM Computing Surveys 18(1), 23-38) on a graph whose edges are the pairs the
rules allow and whose weights favour:

1. essays with few comparisons: the essays with the fewest comparisons take part first (ties
   broken at random), and each edge carries ``2 * (deficit_i + deficit_j)`` where an essay's
   deficit is how many comparisons it lags behind the most compared essay;
2. informative pairs: ``4 p (1 - p)`` with ``p = sigmoid(score_i - score_j)`` is the Fisher
   information of one Bradley-Terry comparison relative to its maximum (equal scores), so
   close scores weigh more. Before the first fit (``scores`` None) every pair weighs the same;
3. a small seeded random jitter that breaks ties, so equal cases do not always fall the same way.

Hard rules (edges that break them are left out of the graph):

- no repeat before exhaustion: an unordered pair is used again only once all ``n(n-1)/2``
  pairs have been used as often as it has (pairs are used in cycles);
- slot balance: two essays that both sat in slot A more often than in slot B (or both in B
  more often) are never paired, and each pair is oriented so that the essay with the lower
  ``A - B`` count takes slot A. An essay's ``A - B`` count then never leaves [-1, 1],
  which counters an LLM judge's position bias. A repeated pair takes the orientation it
  had less often before. Within a cycle of all pairs, this rule cannot always be kept
  together with "no repeat" (a round-robin needs at least ``n - 2`` breaks of home/away
  alternation: de Werra, 1981, "Scheduling in sports", Studies on Graphs and Discrete
  Programming, 381-395). When the slot rule would leave a round with no pair at all, it is
  relaxed for that round only, and an essay may reach ``|A - B| = 2`` (then the rule pulls it
  back). Otherwise an essay sits a round out instead.

Scale. networkx's matching is pure Python and about cubic in the number of essays; above
``BLOCK_SIZE`` essays the participants are split into blocks of neighbouring scores (block
boundaries move at random between rounds) and each block is matched on candidate edges: the
``NEAREST_CANDIDATES`` nearest essays by score plus ``RANDOM_CANDIDATES`` random ones (all
allowed edges in blocks of at most ``FULL_GRAPH_LIMIT``). Essays left unmatched are then
matched together on all their allowed edges. Measured in ``bench/pairing_scale.py``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from cj_operator.pairing.history import PairHistory, summarise_history

__all__ = [
    "BLOCK_SIZE",
    "FULL_GRAPH_LIMIT",
    "NEAREST_CANDIDATES",
    "RANDOM_CANDIDATES",
    "select_pairs",
]

BLOCK_SIZE = 100
"""Most essays matched in one networkx call; larger rounds are split into score blocks."""
FULL_GRAPH_LIMIT = 64
"""Blocks (and pools of leftovers) up to this size use every allowed edge."""
NEAREST_CANDIDATES = 6
"""Candidate partners per essay among its nearest neighbours by score (half each side)."""
RANDOM_CANDIDATES = 4
"""Candidate partners per essay drawn at random from its block."""

_COUNT_WEIGHT = 2.0
_JITTER = 1e-3


def select_pairs(
    n_items: int,
    scores: Sequence[float] | None,
    history: Sequence[tuple[int, int]],
    max_pairs: int,
    seed: int = 0,
) -> list[tuple[int, int]]:
    """Choose one round of new comparisons.

    Args:
        n_items: number of essays, >= 0; essays are indices ``0 .. n_items - 1``.
        scores: current score per essay (logits, e.g. Bradley-Terry), or None before the
            first fit; only differences matter.
        history: ``(slot_a_index, slot_b_index)`` of every comparison already made or in
            flight, so that in-flight pairs are neither repeated nor double-booked.
        max_pairs: most pairs to return, >= 0 (e.g. what is left of the budget).
        seed: any integer; the same inputs and seed always give the same pairs.

    Returns:
        Up to ``min(max_pairs, n_items // 2)`` pairs ``(slot_a_index, slot_b_index)``, each
        essay in at most one pair, essays with the fewest comparisons first (module
        docstring: rules and weights). Fewer pairs only when the rules leave no more; empty
        when ``n_items`` < 2 or ``max_pairs`` is 0.

    Raises:
        ValueError: a negative or non-integer ``n_items``/``max_pairs``/``seed``, ``scores``
            of the wrong length or not finite, or a bad ``history`` entry (named by position).
    """
    for name, value in (("n_items", n_items), ("max_pairs", max_pairs), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n_items < 0 or max_pairs < 0:
        raise ValueError(
            f"n_items and max_pairs must be >= 0, got n_items={n_items}, max_pairs={max_pairs}"
        )
    summary = summarise_history(n_items, history)
    score_array = _checked_scores(n_items, scores)
    target = min(max_pairs, n_items // 2)
    if target == 0:
        return []
    rng = np.random.default_rng([seed % 2**63, n_items, len(history)])
    planner = _RoundPlanner(summary, score_array, rng)
    pairs = planner.plan(target, strict_slots=True)
    if not pairs:
        pairs = planner.plan(target, strict_slots=False)
    return [planner.orient(i, j) for i, j in pairs]


def _checked_scores(n_items: int, scores: Sequence[float] | None) -> NDArray[np.float64] | None:
    if scores is None:
        return None
    if len(scores) != n_items:
        raise ValueError(f"scores has {len(scores)} values for {n_items} essays")
    array = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("scores must all be finite numbers")
    return array


class _RoundPlanner:
    """Builds one round's matching for a fixed history, scores and random stream."""

    def __init__(
        self,
        summary: PairHistory,
        scores: NDArray[np.float64] | None,
        rng: np.random.Generator,
    ) -> None:
        self._summary = summary
        self._scores = scores
        self._rng = rng
        counts = summary.comparisons
        self._deficit = counts.max() - counts
        # Fewest comparisons first; a random key breaks ties.
        tie_break = rng.permutation(summary.n_items)
        self._order: list[int] = [int(i) for i in np.lexsort((tie_break, counts))]

    def plan(self, target: int, *, strict_slots: bool) -> list[tuple[int, int]]:
        """At most ``target`` disjoint allowed pairs ``(low, high)``, neediest first."""
        n_items = self._summary.n_items
        size = min(n_items, 2 * target)
        participants = self._order[:size]
        pairs: list[tuple[int, int]] = []
        for block in self._blocks(participants):
            pairs += self._match(block, strict_slots)
        matched = {i for pair in pairs for i in pair}
        pool = [i for i in participants if i not in matched]
        next_index = size
        while len(pairs) < target:
            if len(pool) >= 2:
                found = self._match(pool, strict_slots)
                pairs += found
                matched.update(i for pair in found for i in pair)
                pool = [i for i in pool if i not in matched]
            if len(pairs) >= target or next_index >= n_items:
                break
            take = 2 * (target - len(pairs))
            pool += self._order[next_index : next_index + take]
            next_index += take
        pairs.sort(key=self._need)
        return pairs[:target]

    def orient(self, i: int, j: int) -> tuple[int, int]:
        """``(slot_a, slot_b)``: the essay with the lower ``A - B`` count takes slot A."""
        balance = self._summary.slot_balance
        if balance[i] != balance[j]:
            return (i, j) if balance[i] < balance[j] else (j, i)
        low, high = (i, j) if i < j else (j, i)
        previous = self._summary.pair_orientation.get((low, high), 0)
        if previous != 0:
            return (high, low) if previous > 0 else (low, high)
        return (low, high) if self._rng.random() < 0.5 else (high, low)

    def _need(self, pair: tuple[int, int]) -> tuple[int, int, int, int]:
        counts = self._summary.comparisons
        i, j = pair
        return (max(counts[i], counts[j]), counts[i] + counts[j], i, j)

    def _blocks(self, participants: list[int]) -> list[list[int]]:
        """Split into blocks of at most about ``BLOCK_SIZE`` neighbouring scores."""
        if len(participants) <= BLOCK_SIZE:
            return [participants]
        ordered = self._by_score(participants)
        n_blocks = math.ceil(len(ordered) / BLOCK_SIZE)
        width = len(ordered) / n_blocks
        offset = self._rng.uniform(-width / 2, width / 2)
        cuts = [0]
        for k in range(1, n_blocks):
            cut = 2 * round((offset + k * width) / 2)  # even, so blocks match perfectly
            if cuts[-1] < cut < len(ordered):
                cuts.append(cut)
        cuts.append(len(ordered))
        return [ordered[a:b] for a, b in itertools.pairwise(cuts) if b > a]

    def _by_score(self, items: list[int]) -> list[int]:
        if self._scores is None:
            return [items[k] for k in self._rng.permutation(len(items))]
        tie_break = self._rng.random(len(items))
        keys = self._scores[np.asarray(items)]
        return [items[k] for k in np.lexsort((tie_break, keys))]

    def _match(self, members: list[int], strict_slots: bool) -> list[tuple[int, int]]:
        graph = nx.Graph()
        graph.add_nodes_from(members)
        for i, j in self._candidates(members):
            if self._allowed(i, j, strict_slots):
                graph.add_edge(i, j, weight=self._weight(i, j))
        matching = nx.max_weight_matching(graph, maxcardinality=True)
        return sorted((min(i, j), max(i, j)) for i, j in matching)

    def _candidates(self, members: list[int]) -> list[tuple[int, int]]:
        """Candidate edges ``(low, high)`` among ``members``, each once, in a fixed order."""
        size = len(members)
        if size <= FULL_GRAPH_LIMIT:
            ordered = sorted(members)
            return [(a, b) for k, a in enumerate(ordered) for b in ordered[k + 1 :]]
        ordered = self._by_score(members)
        edges: set[tuple[int, int]] = set()
        for k, a in enumerate(ordered):
            for d in range(1, NEAREST_CANDIDATES // 2 + 1):
                if k + d < size:
                    b = ordered[k + d]
                    edges.add((min(a, b), max(a, b)))
            for r in self._rng.integers(0, size, RANDOM_CANDIDATES):
                b = ordered[int(r)]
                if b != a:
                    edges.add((min(a, b), max(a, b)))
        return sorted(edges)

    def _allowed(self, i: int, j: int, strict_slots: bool) -> bool:
        if self._summary.times_compared(i, j) != self._summary.level:
            return False
        if strict_slots:
            bi = self._summary.slot_balance[i]
            bj = self._summary.slot_balance[j]
            if (bi > 0 and bj > 0) or (bi < 0 and bj < 0):
                return False
        return True

    def _weight(self, i: int, j: int) -> float:
        need = _COUNT_WEIGHT * float(self._deficit[i] + self._deficit[j])
        if self._scores is None:
            information = 1.0
        else:
            p = 1.0 / (1.0 + math.exp(-abs(float(self._scores[i] - self._scores[j]))))
            information = 4.0 * p * (1.0 - p)
        return need + information + _JITTER * float(self._rng.random())
