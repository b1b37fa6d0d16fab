"""Does a judge panel beat the best single judge, and which fit combines it? (not in make test)

    .venv/bin/python -m bench.judge_panel                  # the table in docs/scoring.md
    .venv/bin/python -m bench.judge_panel --per-essay 10 --reps 2

Truth: 100 essays (`--essays`) with abilities theta ~ N(0, 1.5^2). Each judge has a systematic
view of its own that shares the truth only in part: judge k decides by
view_k = rho_k * theta + sqrt(1 - rho_k^2) * u_k, u_k ~ N(0, 1.5^2) drawn once per essay (what
it values that the truth does not), with a Bradley-Terry answer on its view. `--rho` gives the
judges (default 0.85, 0.8, 0.75: the first is the best single judge). Every run goes through
the operator's own round decisions (`cj_operator.planning.decide_round_end`) to a budget of
ceil(n * per_essay / 2) comparisons; the panel's comparisons are assigned to its judges by
`cj_operator.pairing.panel.assign_judges` (equal shares). Rows, Spearman with the truth (mean
over `--reps` seeded runs, SD in brackets):

- `single rho=...`: one judge answers every comparison (pooled fit);
- `panel pooled`: the panel, one Bradley-Terry fit of all its answers (what the operator does);
- `panel combined`: one Bradley-Terry fit per judge, scores averaged with inverse-variance
  weights (per-judge fits combined with their uncertainties);
- `panel discrimination`: one scale with a discrimination per judge,
  P(i beats j | k) = sigmoid(a_k (theta_i - theta_j)), fitted jointly (maximum a posteriori,
  theta ~ N(0, 2^2), log a_k ~ N(0, 1)).

The last line: `panel_gain=<pooled panel rho minus best single judge rho>` at the largest
`--per-essay`.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import spearmanr

from cj_operator.pairing.panel import JudgeHistory, assign_judges
from cj_operator.planning import NextRound, RoundState, decide_round_end
from cj_operator.scoring.bradley_terry import BradleyTerryFit, fit_bradley_terry

Judged = list[tuple[int, int, int]]
"""(winner_idx, loser_idx, judge_idx) per comparison."""


def run(
    theta: NDArray[np.float64],
    views: Sequence[NDArray[np.float64]],
    per_essay: int,
    rng: np.random.Generator,
) -> Judged:
    """One batch judged by `views` (one judge: a single judge; more: a panel)."""
    n = len(theta)
    budget = math.ceil(n * per_essay / 2)
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    judged: Judged = []
    fit: BradleyTerryFit | None = None
    panel = JudgeHistory(len(views))
    round_number = 0
    while True:
        decision = decide_round_end(
            RoundState(
                n_items=n,
                round=round_number,
                budget=budget,
                history=history,
                outcomes=outcomes,
                final_failures=0,
                previous_scores=None,
                fit=fit,
                cost_usd=0.0,
                max_cost_usd=None,
                min_success_rate=0.0,
                stability_threshold_se=1e-12,
                min_results_for_stability=budget + 1,
                reliability_target=None,
            )
        )
        if not isinstance(decision, NextRound):
            return judged
        round_number = decision.round
        judges = assign_judges(decision.pairs, [1.0] * len(views), panel)
        for (a, b), k in zip(decision.pairs, judges, strict=True):
            view = views[k]
            a_won = bool(rng.random() < expit(view[a] - view[b]))
            history.append((a, b))
            winner, loser = (a, b) if a_won else (b, a)
            outcomes.append((winner, loser))
            judged.append((winner, loser, k))
        fit = fit_bradley_terry(n, outcomes)


def pooled(n: int, judged: Judged) -> NDArray[np.float64]:
    """One Bradley-Terry fit of every answer."""
    return np.asarray(fit_bradley_terry(n, [(w, lo) for w, lo, _ in judged]).scores)


def combined(n: int, judged: Judged, n_judges: int) -> NDArray[np.float64]:
    """Per-judge fits averaged with inverse-variance weights."""
    total = np.zeros(n)
    weight = np.zeros(n)
    for k in range(n_judges):
        fit = fit_bradley_terry(n, [(w, lo) for w, lo, j in judged if j == k])
        inverse = 1.0 / np.asarray(fit.standard_errors) ** 2
        total += inverse * np.asarray(fit.scores)
        weight += inverse
    return total / weight


def discrimination(n: int, judged: Judged, n_judges: int) -> NDArray[np.float64]:
    """One scale with a discrimination per judge (maximum a posteriori)."""
    winners = np.array([w for w, _, _ in judged])
    losers = np.array([lo for _, lo, _ in judged])
    judges = np.array([k for _, _, k in judged])

    def objective(x: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        theta, log_a = x[:n], x[n:]
        a = np.exp(log_a)[judges]
        diff = theta[winners] - theta[losers]
        z = a * diff
        value = (
            -float(np.sum(log_expit(z))) + float(np.sum(theta**2)) / 8 + float(np.sum(log_a**2)) / 2
        )
        g = expit(-z)  # d(-log sigmoid(z))/dz = -(1 - sigmoid(z))
        grad_theta = theta / 4
        np.add.at(grad_theta, winners, -g * a)
        np.add.at(grad_theta, losers, g * a)
        grad_log_a = log_a.copy()
        np.add.at(grad_log_a, judges, -g * z)
        return value, np.concatenate([grad_theta, grad_log_a])

    start = np.zeros(n + n_judges)
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    theta = np.asarray(result.x[:n])
    return theta - theta.mean()


def main(argv: list[str] | None = None) -> None:
    """Print the panel table (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--essays", type=int, default=100)
    parser.add_argument("--per-essay", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--rho", type=float, nargs="+", default=[0.85, 0.8, 0.75])
    parser.add_argument("--reps", type=int, default=8)
    args = parser.parse_args(argv)
    n, k = args.essays, len(args.rho)
    print("| per essay | judging | fit | Spearman with truth (SD) |")
    print("|---|---|---|---|")
    gain = 0.0
    for per_essay in args.per_essay:
        rows: dict[tuple[str, str], list[float]] = {}
        for seed in range(args.reps):
            rng = np.random.default_rng([seed, n, per_essay])
            theta = rng.normal(0.0, 1.5, n)
            views = [
                rho * theta + math.sqrt(1 - rho**2) * rng.normal(0.0, 1.5, n) for rho in args.rho
            ]

            def rho_of(scores: NDArray[np.float64], truth: NDArray[np.float64] = theta) -> float:
                return float(spearmanr(scores, truth).statistic)

            for rho, view in zip(args.rho, views, strict=True):
                judged = run(theta, [view], per_essay, rng)
                rows.setdefault((f"single rho={rho:g}", "pooled"), []).append(
                    rho_of(pooled(n, judged))
                )
            judged = run(theta, views, per_essay, rng)
            for name, scores in (
                ("pooled", pooled(n, judged)),
                ("combined", combined(n, judged, k)),
                ("discrimination", discrimination(n, judged, k)),
            ):
                rows.setdefault((f"panel of {k}", name), []).append(rho_of(scores))
        for (judging, fit), values in rows.items():
            print(
                f"| {per_essay} | {judging} | {fit} | {statistics.mean(values):.3f} "
                f"({statistics.stdev(values) if len(values) > 1 else 0.0:.3f}) |",
                flush=True,
            )
        best_single = max(
            statistics.mean(v) for (j, _), v in rows.items() if j.startswith("single")
        )
        gain = statistics.mean(rows[(f"panel of {k}", "pooled")]) - best_single
    print(f"panel_gain={gain:+.3f}")


if __name__ == "__main__":
    main()
