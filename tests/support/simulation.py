"""Batches simulated with known truth through the operator's own round decisions (pure).

A simulated judge: essay i has a true ability theta_i (logits) and wins a comparison against
essay j with probability sigmoid(theta_i - theta_j + order_effect if i sits in slot A), the
Bradley-Terry model itself. Each round is chosen by `cj_operator.planning.decide_round_end`,
exactly as the engine chooses it (non-adaptive first rounds, adaptive ones after), judged,
and fitted, until the budget of ceil(n * per_essay / 2) comparisons is spent. The stopping
rules are switched off, so every run spends its whole budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from cj_operator.planning import NextRound, RoundState, decide_round_end
from cj_operator.scoring.bradley_terry import BradleyTerryFit, fit_bradley_terry


@dataclass(frozen=True)
class SimulatedBatch:
    """One simulated batch: the truth, what was asked and answered, and the last fit.

    `comparisons` holds (slot_a_idx, slot_b_idx, a_won) in the order asked.
    """

    theta: NDArray[np.float64]
    comparisons: list[tuple[int, int, bool]]
    fit: BradleyTerryFit
    rounds: int

    @property
    def true_reliability(self) -> float:
        """Squared correlation of the fitted scores with the true abilities (0 when the
        abilities are all equal: nothing can be told apart)."""
        if float(np.std(self.theta)) == 0.0:
            return 0.0
        return float(np.corrcoef(np.asarray(self.fit.scores), self.theta)[0, 1] ** 2)


def simulate_batch(
    n_items: int, per_essay: int, sd: float, seed: int, *, order_effect: float = 0.0
) -> SimulatedBatch:
    """Run one batch of `n_items` essays with abilities N(0, sd^2) (sd 0: all equal)."""
    rng = np.random.default_rng([seed, n_items, per_essay, round(sd * 1000)])
    theta = rng.normal(0.0, sd, size=n_items) if sd > 0 else np.zeros(n_items)
    budget = math.ceil(n_items * per_essay / 2)
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    comparisons: list[tuple[int, int, bool]] = []
    fit: BradleyTerryFit | None = None
    previous: tuple[float, ...] | None = None
    round_number = 0
    while True:
        decision = decide_round_end(
            RoundState(
                n_items=n_items,
                round=round_number,
                budget=budget,
                history=history,
                outcomes=outcomes,
                final_failures=0,
                previous_scores=previous,
                fit=fit,
                cost_usd=0.0,
                max_cost_usd=None,
                min_success_rate=0.0,
                stability_threshold=1e-12,
                min_results_for_stability=budget + 1,
                reliability_target=None,
            )
        )
        if not isinstance(decision, NextRound):
            break
        round_number = decision.round
        for a, b in decision.pairs:
            a_won = bool(rng.random() < expit(theta[a] - theta[b] + order_effect))
            history.append((a, b))
            outcomes.append((a, b) if a_won else (b, a))
            comparisons.append((a, b, a_won))
        previous = fit.scores if fit is not None else None
        fit = fit_bradley_terry(n_items, outcomes)
    assert fit is not None, "the budget allowed no comparison"
    return SimulatedBatch(theta, comparisons, fit, round_number)
