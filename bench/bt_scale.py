"""Time the Bradley-Terry fit on large batches (not run by `make test`).

    .venv/bin/python -m bench.bt_scale                     # 100, 300, 1000 essays x 20
    .venv/bin/python -m bench.bt_scale --sizes 2000 --per-essay 10 --reps 1

Random pairs, outcomes from the Bradley-Terry model with abilities ~ N(0, 1.5^2). Prints the
median wall time of `fit_bradley_terry` over `--reps` runs and its Spearman correlation with
the truth. The cost is dominated by choix's dense I-LSR, O(n^3) per iteration.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.special import expit
from scipy.stats import spearmanr

from cj_operator.scoring.bradley_terry import fit_bradley_terry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--per-essay", type=int, nargs="+", default=[20])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print("| essays | per essay | comparisons | fit_s (median) | rho |")
    print("|---|---|---|---|---|")
    for n_items in args.sizes:
        for per_essay in args.per_essay:
            rng = np.random.default_rng([n_items, per_essay])
            theta = rng.normal(0.0, 1.5, size=n_items)
            m = n_items * per_essay // 2
            a = rng.integers(0, n_items, m)
            b = (a + rng.integers(1, n_items, m)) % n_items
            a_wins = rng.random(m) < expit(theta[a] - theta[b])
            outcomes = [
                (int(x), int(y)) if w else (int(y), int(x))
                for x, y, w in zip(a, b, a_wins, strict=True)
            ]
            times = []
            for _ in range(args.reps):
                started = time.perf_counter()
                fit = fit_bradley_terry(n_items, outcomes)
                times.append(time.perf_counter() - started)
            rho = spearmanr(fit.scores, theta).statistic
            print(
                f"| {n_items} | {per_essay} | {m} | {statistics.median(times):.3f} | {rho:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
