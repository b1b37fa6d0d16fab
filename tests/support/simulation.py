"""Batches simulated with known truth through the operator's own round decisions (pure).

A simulated judge: essay i has a true ability theta_i (logits) and wins a comparison against
essay j with probability sigmoid(theta_i - theta_j + order_effect if i sits in slot A), the
Bradley-Terry model itself. Each round is chosen by `cj_operator.planning.decide_round_end`,
exactly as the engine chooses it (non-adaptive first rounds, adaptive ones after), judged,
and fitted, until the budget of ceil(n * per_essay / 2) comparisons is spent. The
score-stability rule is switched off unless a threshold is given, so a run spends its whole
budget (or stops as the operator would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from cj_operator.planning import NextRound, RoundState, Stop, decide_round_end
from cj_operator.scoring.bradley_terry import BradleyTerryFit, fit_bradley_terry


@dataclass(frozen=True)
class SimulatedBatch:
    """One simulated batch: the truth, what was asked and answered, and the last fit.

    `comparisons` holds (slot_a_idx, slot_b_idx, a_won) in the order asked; `fits` the fit
    after each round (the last is `fit`) and `asked` the comparisons asked by then.
    """

    theta: NDArray[np.float64]
    comparisons: list[tuple[int, int, bool]]
    fit: BradleyTerryFit
    rounds: int
    fits: tuple[BradleyTerryFit, ...] = ()
    asked: tuple[int, ...] = ()
    stop: Stop | None = None

    def true_reliability_of(self, fit: BradleyTerryFit) -> float:
        """Squared correlation of `fit`'s scores with the true abilities (0 when all equal)."""
        if float(np.std(self.theta)) == 0.0:
            return 0.0
        return float(np.corrcoef(np.asarray(fit.scores), self.theta)[0, 1] ** 2)

    @property
    def true_reliability(self) -> float:
        """Squared correlation of the fitted scores with the true abilities (0 when the
        abilities are all equal: nothing can be told apart)."""
        return self.true_reliability_of(self.fit)


def simulate_batch(
    n_items: int,
    per_essay: int,
    sd: float,
    seed: int,
    *,
    order_effect: float = 0.0,
    stability_threshold_se: float | None = None,
) -> SimulatedBatch:
    """Run one batch of `n_items` essays with abilities N(0, sd^2) (sd 0: all equal).

    With `stability_threshold_se` the operator's score-stability rule applies (after 12
    results, the CJBatch default); without it only the budget stops the batch.
    """
    rng = np.random.default_rng([seed, n_items, per_essay, round(sd * 1000)])
    theta = rng.normal(0.0, sd, size=n_items) if sd > 0 else np.zeros(n_items)
    budget = math.ceil(n_items * per_essay / 2)
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    comparisons: list[tuple[int, int, bool]] = []
    fit: BradleyTerryFit | None = None
    previous: tuple[float, ...] | None = None
    round_number = 0
    last: list[tuple[int, int]] = []
    fits: list[BradleyTerryFit] = []
    asked: list[int] = []
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
                results_at_previous_fit=None if previous is None else len(outcomes) - len(last),
                fit=fit,
                cost_usd=0.0,
                max_cost_usd=None,
                min_success_rate=0.0,
                stability_threshold_se=stability_threshold_se or 1e-12,
                min_results_for_stability=12 if stability_threshold_se else budget + 1,
                reliability_target=None,
            )
        )
        if not isinstance(decision, NextRound):
            stop = decision
            break
        round_number = decision.round
        last = decision.pairs
        for a, b in decision.pairs:
            a_won = bool(rng.random() < expit(theta[a] - theta[b] + order_effect))
            history.append((a, b))
            outcomes.append((a, b) if a_won else (b, a))
            comparisons.append((a, b, a_won))
        previous = fit.scores if fit is not None else None
        fit = fit_bradley_terry(n_items, outcomes)
        fits.append(fit)
        asked.append(len(history))
    assert fit is not None, "the budget allowed no comparison"
    return SimulatedBatch(theta, comparisons, fit, round_number, tuple(fits), tuple(asked), stop)
