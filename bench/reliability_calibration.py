"""Is the reported reliability calibrated? Simulation with known truth (not run by make test).

    .venv/bin/python -m bench.reliability_calibration          # the table in docs/scoring.md
    .venv/bin/python -m bench.reliability_calibration --sd 0 --per-essay 10 --reps 5

Each run is one batch of `--essays` essays with true abilities N(0, sd^2) (sd 0: all equal)
through the operator's own round decisions (`cj_operator.planning.decide_round_end`: the
non-adaptive first rounds, then adaptive pairing) and Bradley-Terry fit, judged by a
Bradley-Terry judge, until the budget of ceil(n * per_essay / 2) comparisons is spent
(tests/support/simulation.py). Per (sd, comparisons per essay), means over `--reps` seeded
runs:

- true: the true reliability, the squared correlation of the fitted scores with the truth;
- reliability: the empirical-Bayes reliability the operator reports (status.reliability,
  what spec.stopping.reliabilityTarget compares with), with its SD over runs;
- ssr: the scale separation reliability of the same fits (status.ssr);
- rho: Spearman correlation of the fitted scores with the truth.

The last line is `reliability=<mean> ssr=<mean> true=<mean>` over every run printed.
"""

from __future__ import annotations

import argparse
import statistics

from scipy.stats import spearmanr

from tests.support.simulation import simulate_batch


def main(argv: list[str] | None = None) -> None:
    """Print the calibration table (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sd", type=float, nargs="+", default=[0.0, 0.75, 1.5, 3.0])
    parser.add_argument("--per-essay", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--essays", type=int, default=100)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args(argv)
    print("| sd | per essay | true | reliability (SD) | ssr | rho |")
    print("|---|---|---|---|---|---|")
    reported_all: list[float] = []
    ssr_all: list[float] = []
    true_all: list[float] = []
    for sd in args.sd:
        for per_essay in args.per_essay:
            reported: list[float] = []
            ssr: list[float] = []
            truth: list[float] = []
            rho: list[float] = []
            for seed in range(args.reps):
                batch = simulate_batch(args.essays, per_essay, sd, seed)
                reported.append(batch.fit.reliability or 0.0)
                ssr.append(batch.fit.ssr or 0.0)
                truth.append(batch.true_reliability)
                rho.append(float(spearmanr(batch.fit.scores, batch.theta).statistic) if sd else 0.0)
            spread = statistics.stdev(reported) if len(reported) > 1 else 0.0
            print(
                f"| {sd:g} | {per_essay} | {statistics.mean(truth):.3f} | "
                f"{statistics.mean(reported):.3f} ({spread:.2f}) | {statistics.mean(ssr):.3f} | "
                f"{statistics.mean(rho):.3f} |",
                flush=True,
            )
            reported_all += reported
            ssr_all += ssr
            true_all += truth
    print(
        f"reliability={statistics.mean(reported_all):.3f} ssr={statistics.mean(ssr_all):.3f} "
        f"true={statistics.mean(true_all):.3f}"
    )


if __name__ == "__main__":
    main()
