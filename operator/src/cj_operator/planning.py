"""What a batch does when a round is settled: fit, then stop or choose the next round (pure).

A round is settled when none of its comparisons is open (PENDING or SUBMITTED) and no failed
one awaits its retry. Then the batch fits Bradley-Terry to every comparison with a winner and:

1. fails with `LowSuccessRate` as soon as the comparisons that failed for good make
   `minSuccessRate` unreachable even if every remaining comparison of the budget succeeded;
2. stops on a `decide_stop` rule (reliability target, score stability, budget, all pairs
   compared) or with `CostLimitExceeded` once the spent cost reaches `maxCostUSD`;
3. otherwise selects the next round's pairs (at most what is left of the budget). Rounds
   1-4 and every third round after them are non-adaptive (`is_adaptive_round`): pairs are
   chosen without the scores (still balanced over essays and slots, no repeats), so the
   empirical-Bayes reliability that stops a batch stays calibrated (docs/scoring.md).
4. with `maxCostUSD` and a `CostModel`, cuts the round at the first pair whose reservation
   no longer fits under the limit (`cj_operator.costing`: spent + reserved + this pair <=
   maxCostUSD); when not even the first fits, stops with `CostLimitExceeded`.

A batch that stops is scored; it completes when its success rate (comparisons with a winner
over comparisons decided) is at least `minSuccessRate`, else it fails with `LowSuccessRate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cj_operator.costing import CostModel, Headroom, affordable
from cj_operator.lifecycle.reasons import Reason
from cj_operator.pairing.history import unused_pair_count
from cj_operator.pairing.selection import select_pairs
from cj_operator.scoring.bradley_terry import BradleyTerryFit
from cj_operator.scoring.stopping import decide_stop, score_change_se

NON_ADAPTIVE_FIRST_ROUNDS = 4
"""Rounds chosen without scores at the start: each essay meets about 4 random opponents, which
anchors the ability-variance estimate (without them it was unstable in simulation)."""
NON_ADAPTIVE_EVERY = 3
"""After the first rounds, every third round is chosen without scores as well; in simulation
this moved the mean reported reliability from 0.10 below the true one to within 0.04 at
ability SD 0.75 and 10 comparisons per essay (bench/reliability_calibration.py)."""


def is_adaptive_round(round_number: int) -> bool:
    """True when round `round_number` (1-based) pairs by the current scores."""
    if round_number <= NON_ADAPTIVE_FIRST_ROUNDS:
        return False
    return (round_number - NON_ADAPTIVE_FIRST_ROUNDS) % NON_ADAPTIVE_EVERY != 0


@dataclass(frozen=True)
class RoundState:
    """A batch at the end of a round, as the decision needs it.

    `history` holds every comparison asked (first attempts only; a retry repeats its pair),
    `outcomes` every (winner_idx, loser_idx) with a winner, `final_failures` the comparisons
    that failed with no retry left.
    """

    n_items: int
    round: int
    budget: int
    history: Sequence[tuple[int, int]]
    outcomes: Sequence[tuple[int, int]]
    final_failures: int
    previous_scores: Sequence[float] | None
    fit: BradleyTerryFit | None
    cost_usd: float
    max_cost_usd: float | None
    min_success_rate: float
    stability_threshold_se: float
    min_results_for_stability: int
    reliability_target: float | None
    results_at_previous_fit: int | None = None
    """Comparisons with a winner when `previous_scores` were fitted; None when unknown. When
    no winner came since (e.g. every comparison of the round failed), the fit cannot have
    moved, so score stability is not judged from it."""
    reserved_usd: float = 0.0
    """Reservations (USD) of the comparisons still in flight."""
    costs: CostModel | None = None
    """What each new pair reserves; None: pairs reserve nothing (no prices known)."""


@dataclass(frozen=True)
class Stop:
    """Submit nothing more; score the batch. `failed` when the success rate is too low."""

    reason: Reason
    message: str
    failed: bool


@dataclass(frozen=True)
class NextRound:
    """Submit these (slot_a_idx, slot_b_idx) pairs as round `round`."""

    round: int
    pairs: list[tuple[int, int]]
    message: str
    costs: list[tuple[float, float]] = field(default_factory=list)
    """(estimate_usd, reserved_usd) per pair, in order; empty when nothing is reserved."""


def success_rate(successes: int, final_failures: int) -> float | None:
    """Comparisons with a winner over comparisons decided; None when none is decided."""
    decided = successes + final_failures
    return None if decided == 0 else successes / decided


def final_verdict(
    reason: Reason, message: str, successes: int, final_failures: int, min_success_rate: float
) -> Stop:
    """Stop with `reason`, or with LowSuccessRate when the success rate is below the minimum."""
    rate = success_rate(successes, final_failures)
    if rate is not None and rate < min_success_rate:
        return Stop(
            Reason.LOW_SUCCESS_RATE,
            f"{successes} of {successes + final_failures} comparisons succeeded "
            f"({rate:.0%}), below minSuccessRate {min_success_rate:.0%}. {message}",
            failed=True,
        )
    return Stop(reason, message, failed=False)


def decide_round_end(state: RoundState) -> Stop | NextRound:
    """Stop (and why) or the next round's pairs, for a settled round (module docstring)."""
    successes = len(state.outcomes)
    asked = len(state.history)
    total = max(state.budget, asked, 1)
    # Even if every comparison left in the budget succeeded, the rate would stay below the
    # minimum (a small tolerance keeps 8 of 40 at 80% from failing through rounding).
    if total - state.final_failures < state.min_success_rate * total - 1e-9:
        best = (total - state.final_failures) / total
        return Stop(
            Reason.LOW_SUCCESS_RATE,
            f"{state.final_failures} comparisons failed after all retries; even if every "
            f"remaining one succeeded the success rate could reach only {best:.0%}, below "
            f"minSuccessRate {state.min_success_rate:.0%}.",
            failed=True,
        )
    scores = state.fit.scores if state.fit is not None else None
    new_results = state.results_at_previous_fit is None or successes > state.results_at_previous_fit
    change = (
        score_change_se(state.previous_scores, state.fit.scores, state.fit.standard_errors)
        if state.fit is not None and new_results
        else None
    )
    decision = decide_stop(
        n_items=state.n_items,
        results=successes,
        submitted=asked,
        max_total=state.budget,
        change_se=change,
        stability_threshold_se=state.stability_threshold_se,
        min_results_for_stability=state.min_results_for_stability,
        reliability=state.fit.reliability if state.fit is not None else None,
        reliability_target=state.reliability_target,
        pairs_available=unused_pair_count(state.n_items, state.history),
    )
    if decision.stop and decision.reason is not None:
        return final_verdict(
            decision.reason,
            decision.message,
            successes,
            state.final_failures,
            state.min_success_rate,
        )
    if state.max_cost_usd is not None and state.cost_usd >= state.max_cost_usd:
        return final_verdict(
            Reason.COST_LIMIT_EXCEEDED,
            f"The estimated cost ${state.cost_usd:.4f} reached maxCostUSD "
            f"${state.max_cost_usd:.4f}; no more comparisons are submitted.",
            successes,
            state.final_failures,
            state.min_success_rate,
        )
    pairs = select_pairs(
        state.n_items,
        scores if is_adaptive_round(state.round + 1) else None,
        state.history,
        max_pairs=state.budget - asked,
        seed=state.round + 1,
    )
    if not pairs:
        return final_verdict(
            Reason.ALL_PAIRS_COMPARED,
            "The pairing policy found no further pair to compare.",
            successes,
            state.final_failures,
            state.min_success_rate,
        )
    if state.costs is None:
        return NextRound(state.round + 1, pairs, decision.message)
    costs = state.costs
    estimates = [costs.estimate(a, b) for a, b in pairs]
    reservations = [costs.reserve(e) for e in estimates]
    headroom = Headroom(
        state.max_cost_usd,
        spent=state.cost_usd,
        reserved=state.reserved_usd,
        calibrated=costs.calibration.trusted,
    )
    kept = affordable(reservations, headroom)
    if kept == 0:
        return final_verdict(
            Reason.COST_LIMIT_EXCEEDED,
            f"The next comparison would reserve ${reservations[0]:.4f} (estimated), more than "
            f"the ${max(0.0, headroom.left):.4f} left under maxCostUSD "
            f"${state.max_cost_usd:.4f}; no more comparisons are submitted.",
            successes,
            state.final_failures,
            state.min_success_rate,
        )
    message = decision.message
    if kept < len(pairs):
        message = (
            f"{message} Cut to {kept} of {len(pairs)} pairs: their reserved cost "
            f"${headroom.taken:.4f} is what fits under maxCostUSD."
        ).strip()
    return NextRound(
        state.round + 1,
        pairs[:kept],
        message,
        costs=list(zip(estimates[:kept], reservations[:kept], strict=True)),
    )
