"""Pair selection: properties over many batch sizes (odd, even, 2, 3) and round sequences."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from cj_operator.pairing.history import summarise_history, unused_pair_count
from cj_operator.pairing.selection import BLOCK_SIZE, select_pairs

SMALL_SIZES = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 23, 24]


def unordered(pair: tuple[int, int]) -> tuple[int, int]:
    return (min(pair), max(pair))


def slot_balance(n_items: int, history: list[tuple[int, int]]) -> list[int]:
    """Times in slot A minus times in slot B, per essay (independent of the implementation)."""
    balance = [0] * n_items
    for a, b in history:
        balance[a] += 1
        balance[b] -= 1
    return balance


def comparisons(n_items: int, history: list[tuple[int, int]]) -> list[int]:
    counts = [0] * n_items
    for a, b in history:
        counts[a] += 1
        counts[b] += 1
    return counts


def run_rounds(
    n_items: int,
    rounds: int,
    max_pairs: int,
    seed: int,
    scores: list[float] | None = None,
) -> list[list[tuple[int, int]]]:
    """Select `rounds` rounds in a row, each seeing all earlier ones as history."""
    history: list[tuple[int, int]] = []
    selected = []
    for _ in range(rounds):
        pairs = select_pairs(n_items, scores, history, max_pairs, seed=seed)
        selected.append(pairs)
        history += pairs
    return selected


# --- shape of one round ---------------------------------------------------------------------


@pytest.mark.parametrize("n_items", SMALL_SIZES)
def test_each_round_pairs_each_essay_at_most_once_within_max_pairs(n_items: int) -> None:
    for max_pairs in (1, 2, n_items // 2, n_items):
        for pairs in run_rounds(n_items, rounds=6, max_pairs=max_pairs, seed=n_items):
            essays = [i for pair in pairs for i in pair]
            assert len(essays) == len(set(essays))
            assert all(0 <= i < n_items for i in essays)
            assert all(a != b for a, b in pairs)
            assert len(pairs) <= min(max_pairs, n_items // 2)


@pytest.mark.parametrize("n_items", SMALL_SIZES)
def test_first_round_is_as_large_as_allowed(n_items: int) -> None:
    for max_pairs in (1, 3, n_items // 2, 10 * n_items):
        pairs = select_pairs(n_items, None, [], max_pairs)
        assert len(pairs) == min(max_pairs, n_items // 2)


@pytest.mark.parametrize(("n_items", "max_pairs"), [(0, 5), (1, 5), (7, 0)])
def test_nothing_to_pair_gives_an_empty_round(n_items: int, max_pairs: int) -> None:
    assert select_pairs(n_items, None, [], max_pairs) == []


# --- coverage and fairness ------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [*SMALL_SIZES, 41, 60])
def test_every_essay_is_compared_within_ceil_n_over_2k_rounds(n_items: int) -> None:
    for max_pairs in sorted({1, 2, 3, max(1, n_items // 3), n_items // 2}):
        per_round = min(max_pairs, n_items // 2)
        rounds = math.ceil(n_items / (2 * per_round))
        history = [p for r in run_rounds(n_items, rounds, max_pairs, seed=3) for p in r]
        assert min(comparisons(n_items, history)) >= 1, (n_items, max_pairs)


@pytest.mark.parametrize("n_items", [3, 5, 7, 9, 11, 13, 17, 23, 31])
def test_odd_counts_rotate_who_sits_out(n_items: int) -> None:
    """One essay sits out per round, never the same one twice in a row, and the counts of
    comparisons never differ by more than 1 within the first (n-1)/2 rounds."""
    history: list[tuple[int, int]] = []
    previous_out: int | None = None
    for _ in range((n_items - 1) // 2):
        pairs = select_pairs(n_items, None, history, n_items, seed=1)
        assert len(pairs) == n_items // 2
        (out,) = set(range(n_items)) - {i for p in pairs for i in p}
        assert out != previous_out
        previous_out = out
        history += pairs
        counts = comparisons(n_items, history)
        assert max(counts) - min(counts) <= 1


def test_essays_with_fewest_comparisons_are_chosen_first() -> None:
    history = [(0, 1), (2, 3), (1, 2), (3, 0), (0, 2), (1, 3)]  # 0-3 have three each
    pairs = select_pairs(10, None, history, max_pairs=3, seed=4)
    assert {i for p in pairs for i in p} == {4, 5, 6, 7, 8, 9}


# --- no repeats before exhaustion -----------------------------------------------------------


@pytest.mark.parametrize("n_items", SMALL_SIZES)
def test_no_pair_repeats_before_all_pairs_are_used(n_items: int) -> None:
    """Over three full cycles, every pair chosen has been used exactly as often as the least
    used pair of all n(n-1)/2 (so pairs are used in cycles)."""
    all_pairs = [(i, j) for i in range(n_items) for j in range(i + 1, n_items)]
    used: Counter[tuple[int, int]] = Counter()
    history: list[tuple[int, int]] = []
    while sum(used.values()) < 3 * len(all_pairs):
        pairs = select_pairs(n_items, None, history, n_items // 2, seed=n_items)
        assert pairs, "a round came back empty while pairs remained"
        level = min(used[p] for p in all_pairs)
        for pair in pairs:
            assert used[unordered(pair)] == level, (n_items, pair, level)
        used.update(unordered(p) for p in pairs)
        history += pairs


def test_pairs_in_flight_are_not_chosen_again() -> None:
    in_flight = [(0, 1), (2, 3), (4, 5)]
    pairs = select_pairs(6, None, in_flight, max_pairs=3, seed=0)
    assert not {unordered(p) for p in pairs} & {unordered(p) for p in in_flight}


def test_unused_pair_count_counts_distinct_unordered_pairs() -> None:
    assert unused_pair_count(4, []) == 6
    assert unused_pair_count(4, [(0, 1), (1, 0), (2, 3)]) == 4
    assert unused_pair_count(1, []) == 0


# --- slot A / slot B balance ----------------------------------------------------------------


@pytest.mark.parametrize("n_items", [*SMALL_SIZES, 40])
def test_slot_balance_stays_within_one_within_the_first_cycle(n_items: int) -> None:
    """Within the first cycle of all pairs (until the closing rounds, where 'no repeat' can
    force a break) every essay's A - B count stays in [-1, 1]."""
    history: list[tuple[int, int]] = []
    while len(history) < n_items * (n_items - 1) // 2 - n_items:
        pairs = select_pairs(n_items, None, history, n_items // 2, seed=7)
        history += pairs
        assert max(abs(b) for b in slot_balance(n_items, history)) <= 1


@pytest.mark.parametrize("n_items", SMALL_SIZES)
def test_slot_balance_breaks_only_when_nothing_else_can_be_paired(n_items: int) -> None:
    """Over three cycles |A - B| never exceeds 2, and a round pushes it past 1 only when every
    pair still open in the cycle joined two essays leaning to the same slot."""
    all_pairs = [(i, j) for i in range(n_items) for j in range(i + 1, n_items)]
    used: Counter[tuple[int, int]] = Counter()
    history: list[tuple[int, int]] = []
    while sum(used.values()) < 3 * len(all_pairs):
        before = slot_balance(n_items, history)
        level = min(used[p] for p in all_pairs)
        open_pairs = [(i, j) for i, j in all_pairs if used[(i, j)] == level]
        pairs = select_pairs(n_items, None, history, n_items // 2, seed=n_items + 1)
        history += pairs
        used.update(unordered(p) for p in pairs)
        after = slot_balance(n_items, history)
        assert max(abs(b) for b in after) <= 2
        if max(abs(b) for b in after) > max(1, max(abs(b) for b in before)):
            assert all(before[i] * before[j] > 0 for i, j in open_pairs), (n_items, open_pairs)


@pytest.mark.parametrize("n_items", [2, 3, 5, 8])
def test_the_lower_a_minus_b_essay_takes_slot_a(n_items: int) -> None:
    history: list[tuple[int, int]] = []
    for _ in range(12):
        before = slot_balance(n_items, history)
        pairs = select_pairs(n_items, None, history, n_items // 2, seed=2)
        for a, b in pairs:
            assert before[a] <= before[b]
        history += pairs


def test_two_essays_share_slot_a_equally() -> None:
    rounds = run_rounds(2, rounds=10, max_pairs=1, seed=0)
    assert [len(r) for r in rounds] == [1] * 10
    for played in range(2, 11, 2):
        firsts = [r[0][0] for r in rounds[:played]]
        assert firsts.count(0) == firsts.count(1) == played // 2


@pytest.mark.parametrize("n_items", [3, 4, 5, 6])
def test_a_repeated_pair_takes_the_orientation_it_had_less_often(n_items: int) -> None:
    """When both essays lean the same way (equal A - B), a pair compared before is put in the
    slot order it had less often."""
    history: list[tuple[int, int]] = []
    checked = 0
    for _ in range(8 * n_items):
        before = slot_balance(n_items, history)
        for a, b in select_pairs(n_items, None, history, n_items // 2, seed=n_items):
            a_first = sum(1 for p in history if p == (a, b))
            b_first = sum(1 for p in history if p == (b, a))
            if before[a] == before[b] and a_first != b_first:
                assert a_first < b_first
                checked += 1
            history.append((a, b))
    assert checked > 0


# --- scores steer the matching --------------------------------------------------------------


def test_close_scores_are_paired_when_all_else_is_equal() -> None:
    scores = [float(i) for i in range(10)]
    pairs = select_pairs(10, scores, [], max_pairs=5, seed=0)
    assert {unordered(p) for p in pairs} == {(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)}


def test_scores_shrink_the_score_gap_of_chosen_pairs() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 2.0, size=40).tolist()
    history = [p for r in run_rounds(40, 3, 20, seed=0) for p in r]
    adaptive = select_pairs(40, scores, history, 20, seed=0)
    blind = select_pairs(40, None, history, 20, seed=0)
    gap = [np.mean([abs(scores[a] - scores[b]) for a, b in ps]) for ps in (adaptive, blind)]
    assert gap[0] < 0.5 * gap[1]


def test_large_batches_are_matched_in_blocks_and_stay_valid() -> None:
    n_items = 3 * BLOCK_SIZE + 11
    rng = np.random.default_rng(1)
    scores = rng.normal(0.0, 1.5, size=n_items).tolist()
    history = [p for r in run_rounds(n_items, 2, n_items // 2, seed=5) for p in r]
    pairs = select_pairs(n_items, scores, history, n_items // 2, seed=5)
    essays = [i for p in pairs for i in p]
    assert len(essays) == len(set(essays))
    # Block boundaries and the slot rule may leave a pair or two out, not more.
    assert len(pairs) >= n_items // 2 - 2
    assert not {unordered(p) for p in pairs} & {unordered(p) for p in history}
    balance = slot_balance(n_items, history + pairs)
    assert max(abs(b) for b in balance) <= 1
    mean_gap = np.mean([abs(scores[a] - scores[b]) for a, b in pairs])
    assert mean_gap < 0.5  # random pairs would be about 1.7 apart (1.5 * 2 / sqrt(pi))


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [5, 12, 70])
def test_same_inputs_and_seed_give_the_same_pairs(n_items: int) -> None:
    scores = np.linspace(-1.0, 1.0, n_items).tolist()
    history = [p for r in run_rounds(n_items, 2, n_items // 2, seed=9) for p in r]
    first = select_pairs(n_items, scores, history, n_items // 2, seed=9)
    again = select_pairs(n_items, scores, list(history), n_items // 2, seed=9)
    assert first == again


def test_different_seeds_give_different_first_rounds() -> None:
    rounds = {tuple(select_pairs(12, None, [], 6, seed=seed)) for seed in range(6)}
    assert len(rounds) > 1


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": -1}, "n_items and max_pairs must be >= 0"),
        ({"max_pairs": -2}, "n_items and max_pairs must be >= 0"),
        ({"n_items": 4.0}, "n_items must be an integer"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"scores": [0.0, 1.0]}, "scores has 2 values for 4 essays"),
        ({"scores": [0.0, 1.0, math.nan, 2.0]}, "scores must all be finite"),
        ({"history": [(0, 1), (1, 4)]}, r"history\[1\] has slot B index 4"),
        ({"history": [(2, 2)]}, r"history\[0\] pairs essay 2 with itself"),
        ({"history": [(0,)]}, r"history\[0\] must be a \(slot_a_index, slot_b_index\) pair"),
    ],
)
def test_rejects_bad_input_naming_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "n_items": 4,
        "scores": None,
        "history": [],
        "max_pairs": 2,
        "seed": 0,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        select_pairs(**arguments)  # type: ignore[arg-type]  # deliberately wrong types


def test_history_summary_counts_slots_and_pairs() -> None:
    summary = summarise_history(3, [(0, 1), (1, 0), (2, 1)])
    assert summary.comparisons.tolist() == [2, 3, 1]
    assert summary.slot_balance.tolist() == [0, -1, 1]
    assert summary.times_compared(1, 0) == 2
    assert summary.pair_orientation[(0, 1)] == 0
    assert summary.pair_orientation[(1, 2)] == -1
    assert summary.level == 0
