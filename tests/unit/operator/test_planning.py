"""Round-end decisions: next round, stopping rules, cost limit and success-rate failures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cj_operator.lifecycle.reasons import Reason
from cj_operator.planning import (
    NextRound,
    RoundState,
    Stop,
    decide_round_end,
    final_verdict,
    success_rate,
)
from cj_operator.scoring.bradley_terry import fit_bradley_terry

N = 8
ROUND_1 = [(0, 1), (2, 3), (4, 5), (6, 7)]


def state(**changes: Any) -> RoundState:
    outcomes = list(ROUND_1)
    base = RoundState(
        n_items=N,
        round=1,
        budget=40,
        history=ROUND_1,
        outcomes=outcomes,
        final_failures=0,
        previous_scores=None,
        fit=fit_bradley_terry(N, outcomes),
        cost_usd=0.0,
        max_cost_usd=None,
        min_success_rate=0.8,
        stability_threshold_se=0.15,
        min_results_for_stability=12,
        reliability_target=None,
    )
    return replace(base, **changes)


def test_first_round_leads_to_a_second_with_new_pairs() -> None:
    decision = decide_round_end(state())
    assert isinstance(decision, NextRound)
    assert decision.round == 2
    assert 1 <= len(decision.pairs) <= N // 2
    used = {frozenset(p) for p in ROUND_1}
    assert all(frozenset(p) not in used for p in decision.pairs)
    essays = [i for p in decision.pairs for i in p]
    assert len(essays) == len(set(essays))


def test_next_round_respects_the_remaining_budget() -> None:
    decision = decide_round_end(state(budget=6))
    assert isinstance(decision, NextRound)
    assert len(decision.pairs) == 2


def test_budget_exhausted() -> None:
    decision = decide_round_end(state(budget=4))
    assert isinstance(decision, Stop)
    assert (decision.reason, decision.failed) == ("BudgetExhausted", False)


def test_cost_limit_stops_submitting() -> None:
    decision = decide_round_end(state(cost_usd=1.0, max_cost_usd=1.0))
    assert isinstance(decision, Stop)
    assert (decision.reason, decision.failed) == (Reason.COST_LIMIT_EXCEEDED, False)
    assert "$1.0000" in decision.message


def test_too_many_final_failures_fail_early() -> None:
    decision = decide_round_end(state(final_failures=9, budget=40))
    assert isinstance(decision, Stop)
    assert (decision.reason, decision.failed) == (Reason.LOW_SUCCESS_RATE, True)
    assert "only 78%" in decision.message
    assert isinstance(decide_round_end(state(final_failures=8, budget=40)), NextRound)


def test_stopping_with_a_low_success_rate_fails() -> None:
    decision = decide_round_end(state(budget=4, final_failures=2, min_success_rate=0.0))
    assert isinstance(decision, Stop) and not decision.failed
    verdict = final_verdict(Reason.BUDGET_EXHAUSTED, "Budget used.", 3, 2, 0.8)
    assert verdict.failed and verdict.reason == Reason.LOW_SUCCESS_RATE
    assert "3 of 5 comparisons succeeded (60%)" in verdict.message


def test_reliability_target() -> None:
    everything = [(i, j) for i in range(N) for j in range(i + 1, N)] * 3
    fit = fit_bradley_terry(N, everything)
    assert fit.reliability is not None and fit.reliability > 0.5
    decision = decide_round_end(
        state(
            fit=fit,
            outcomes=everything,
            history=everything,
            budget=200,
            reliability_target=fit.reliability - 0.01,
        )
    )
    assert isinstance(decision, Stop)
    assert decision.reason == "ReliabilityReached"


def test_no_fit_yet_still_plans() -> None:
    decision = decide_round_end(state(outcomes=[], fit=None, final_failures=1, budget=40))
    assert isinstance(decision, NextRound)


def test_success_rate() -> None:
    assert success_rate(0, 0) is None
    assert success_rate(3, 1) == 0.75


def test_a_round_without_new_winners_is_not_taken_for_stable_scores() -> None:
    fit = fit_bradley_terry(N, ROUND_1)
    failed_round = [(0, 2), (1, 3), (4, 6), (5, 7)]
    unchanged = state(
        round=2,
        history=ROUND_1 + failed_round,
        final_failures=len(failed_round),
        min_success_rate=0.0,
        min_results_for_stability=0,
        previous_scores=fit.scores,
        fit=fit,
        results_at_previous_fit=len(ROUND_1),
    )
    # Every comparison of round 2 failed: the refit equals the previous fit, which says
    # nothing about stability, so the batch plans round 3 instead of stopping.
    decision = decide_round_end(unchanged)
    assert isinstance(decision, NextRound)
    assert decision.round == 3
    # Had a winner come in since the previous fit, the same zero change would mean stable.
    stopped = decide_round_end(replace(unchanged, results_at_previous_fit=len(ROUND_1) - 1))
    assert isinstance(stopped, Stop)
    assert stopped.reason == Reason.SCORES_STABLE
