"""How well pair selection + Bradley-Terry recover known abilities (not run by `make test`).

    .venv/bin/python -m bench.bt_recovery                    # the table in docs/scoring.md
    .venv/bin/python -m bench.bt_recovery --reps 10 --sd 1.0
    .venv/bin/python -m bench.bt_recovery --alphas 0.1 0.5 1.0 --pairing adaptive

A simulated judge: essay i has a known ability theta_i ~ N(0, sd^2) (logits) and beats essay j
with probability sigmoid(theta_i - theta_j), the Bradley-Terry model itself. Each run selects
a round with `select_pairs` (scores from the previous round's fit, or None for `random`
pairing), judges it, refits, and repeats until the budget of n * per_essay / 2 comparisons is
spent. Printed per (pairing, alpha, n, comparisons per essay), as means over seeded runs:

- rho: Spearman correlation of the final scores with the true abilities;
- rmse: root mean squared error of the centred scores against centred abilities (logits);
- ssr: the scale separation reliability the fit reports;
- r2: squared Pearson correlation with the truth, the reliability SSR estimates
  (SSR > r2 means the reported reliability is optimistic);
- last_change: `max_score_change` between the last two fits (logits), what the stability rule
  compares with its threshold;
- fit_ms / select_ms: mean time of one fit / one round's selection, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import spearmanr

from cj_operator.pairing.selection import select_pairs
from cj_operator.scoring.bradley_terry import DEFAULT_ALPHA, fit_bradley_terry
from cj_operator.scoring.stopping import max_score_change


@dataclass
class Run:
    rho: float
    rmse: float
    ssr: float
    r2: float
    last_change: float
    fit_ms: float
    select_ms: float


def simulate_batch(
    n_items: int, per_essay: int, sd: float, alpha: float, adaptive: bool, seed: int
) -> Run:
    """One batch from empty history to the exhausted budget."""
    rng = np.random.default_rng([seed, n_items, per_essay])
    theta = rng.normal(0.0, sd, size=n_items)
    budget = n_items * per_essay // 2
    history: list[tuple[int, int]] = []
    outcomes: list[tuple[int, int]] = []
    scores: tuple[float, ...] | None = None
    fit_times: list[float] = []
    select_times: list[float] = []
    fit = None
    last_change = float("nan")
    while len(history) < budget:
        started = time.perf_counter()
        pairs = select_pairs(
            n_items,
            scores if adaptive else None,
            history,
            min(n_items // 2, budget - len(history)),
            seed=seed,
        )
        select_times.append(time.perf_counter() - started)
        if not pairs:
            break
        history += pairs
        for a, b in pairs:
            outcomes.append((a, b) if rng.random() < expit(theta[a] - theta[b]) else (b, a))
        started = time.perf_counter()
        fit = fit_bradley_terry(n_items, outcomes, alpha=alpha)
        fit_times.append(time.perf_counter() - started)
        change = max_score_change(scores, fit.scores)
        last_change = change if change is not None else float("nan")
        scores = fit.scores
    assert fit is not None
    estimate = np.array(fit.scores)
    centred = theta - theta.mean()
    return Run(
        rho=float(spearmanr(estimate, theta).statistic),
        rmse=float(np.sqrt(np.mean((estimate - centred) ** 2))),
        ssr=fit.reliability if fit.reliability is not None else float("nan"),
        r2=float(np.corrcoef(estimate, theta)[0, 1] ** 2),
        last_change=last_change,
        fit_ms=1000 * statistics.fmean(fit_times),
        select_ms=1000 * statistics.fmean(select_times),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--per-essay", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--alphas", type=float, nargs="+", default=[DEFAULT_ALPHA])
    parser.add_argument(
        "--pairing", choices=["adaptive", "random", "both"], default="both", help="scores or not"
    )
    parser.add_argument("--sd", type=float, default=1.5, help="SD of true abilities, logits")
    parser.add_argument("--reps", type=int, default=5, help="seeded runs per cell")
    args = parser.parse_args()
    modes = ["adaptive", "random"] if args.pairing == "both" else [args.pairing]

    print(f"true abilities ~ N(0, {args.sd}^2); means over {args.reps} seeded runs per row\n")
    print(
        "| pairing | alpha | n | per essay | rho | rmse | ssr | r2 | last_change "
        "| fit_ms | select_ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for mode in modes:
        for alpha in args.alphas:
            for n_items in args.sizes:
                for per_essay in args.per_essay:
                    runs = [
                        simulate_batch(n_items, per_essay, args.sd, alpha, mode == "adaptive", s)
                        for s in range(args.reps)
                    ]
                    row = {
                        field: statistics.fmean(getattr(r, field) for r in runs)
                        for field in (
                            "rho",
                            "rmse",
                            "ssr",
                            "r2",
                            "last_change",
                            "fit_ms",
                            "select_ms",
                        )
                    }
                    print(
                        f"| {mode} | {alpha:g} | {n_items} | {per_essay} | {row['rho']:.3f} "
                        f"| {row['rmse']:.3f} | {row['ssr']:.3f} | {row['r2']:.3f} "
                        f"| {row['last_change']:.3f} "
                        f"| {row['fit_ms']:.1f} | {row['select_ms']:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
