"""Which score-stability rule, and which default? Simulation with known truth (not in make test).

    .venv/bin/python -m bench.stability_rule              # the table in docs/scoring.md
    .venv/bin/python -m bench.stability_rule --essays 100 --sd 1.5 --reps 2

Each run is one batch of `--essays` essays with true abilities N(0, sd^2) through the
operator's own round decisions and Bradley-Terry fit (tests/support/simulation.py), judged by a
Bradley-Terry judge, with the stopping rules off until `--per-essay` comparisons per essay
(the reference budget) are spent. After every round each candidate rule is evaluated on the
two latest fits; a rule "stops" a run at the first round where it holds (after 12 results, the
CJBatch's minResultsForStability). Rules:

- `se`: `score_change_se` (the root mean square score change between two fits, each in units
  of its standard error) below the threshold: the operator's rule (spec.stopping.
  scoreStabilitySE);
- `logits`: the largest absolute score change below the threshold (logits): the rule before it.

Per (rule, threshold, essays, sd), over `--reps` seeded runs: `per essay` the mean comparisons
per essay at the stop (min-max), `stopped` the share of runs the rule stopped before the
reference budget, `true` the mean true reliability (squared correlation of the scores with the
truth) at the stop, `loss` how much lower that is than at the reference budget (what stopping
early cost). The last line gives the default rule's figures over every non-null cell:
`default se<0.15: per_essay=<mean> max_loss=<largest mean loss of a cell>`.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cj_operator.scoring.bradley_terry import BradleyTerryFit
from cj_operator.scoring.stopping import (
    DEFAULT_STABILITY_THRESHOLD_SE,
    max_score_change,
    score_change_se,
)
from tests.support.simulation import SimulatedBatch, simulate_batch

MIN_RESULTS = 12


@dataclass(frozen=True)
class Rule:
    """A candidate stability statistic; the rule holds when it is below `threshold`."""

    name: str
    threshold: float
    statistic: Callable[[BradleyTerryFit, BradleyTerryFit], float | None]


def _se(previous: BradleyTerryFit, current: BradleyTerryFit) -> float | None:
    return score_change_se(previous.scores, current.scores, current.standard_errors)


def _logits(previous: BradleyTerryFit, current: BradleyTerryFit) -> float | None:
    return max_score_change(previous.scores, current.scores)


RULES = [
    *(Rule("se", t, _se) for t in (0.1, 0.15, 0.2, 0.25, 0.3)),
    *(Rule("logits", t, _logits) for t in (0.025, 0.1, 0.2)),
]


def stop_index(batch: SimulatedBatch, rule: Rule) -> int:
    """Index into `batch.fits` of the fit the rule stops at (the last when it never holds)."""
    for i in range(1, len(batch.fits)):
        change = rule.statistic(batch.fits[i - 1], batch.fits[i])
        if batch.asked[i] >= MIN_RESULTS and change is not None and change < rule.threshold:
            return i
    return len(batch.fits) - 1


def _row(rule: Rule, n: int, sd: float, batches: Sequence[SimulatedBatch]) -> tuple[float, float]:
    per: list[float] = []
    true: list[float] = []
    loss: list[float] = []
    stopped = 0
    for batch in batches:
        i = stop_index(batch, rule)
        stopped += i < len(batch.fits) - 1
        per.append(2 * batch.asked[i] / n)
        at_stop = batch.true_reliability_of(batch.fits[i])
        true.append(at_stop)
        loss.append(batch.true_reliability - at_stop)
    print(
        f"| {rule.name} < {rule.threshold:g} | {n} | {sd:g} | {statistics.mean(per):.1f} "
        f"({min(per):.0f}-{max(per):.0f}) | {stopped / len(batches):.0%} | "
        f"{statistics.mean(true):.3f} | {statistics.mean(loss):.3f} |",
        flush=True,
    )
    return statistics.mean(per), statistics.mean(loss)


def main(argv: list[str] | None = None) -> None:
    """Print the comparison of stability rules (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--essays", type=int, nargs="+", default=[40, 100])
    parser.add_argument("--sd", type=float, nargs="+", default=[0.0, 0.75, 1.5, 3.0])
    parser.add_argument("--per-essay", type=int, default=30)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    runs = {
        (n, sd): [simulate_batch(n, args.per_essay, sd, seed) for seed in range(args.reps)]
        for n in args.essays
        for sd in args.sd
    }
    print("| rule | essays | sd | per essay (min-max) | stopped | true | loss |")
    print("|---|---|---|---|---|---|---|")
    default_per: list[float] = []
    default_loss: list[float] = []
    for rule in RULES:
        for (n, sd), batches in runs.items():
            per, loss = _row(rule, n, sd, batches)
            if rule.name == "se" and rule.threshold == DEFAULT_STABILITY_THRESHOLD_SE and sd:
                default_per.append(per)
                default_loss.append(loss)
    if default_per:
        print(
            f"default se<{DEFAULT_STABILITY_THRESHOLD_SE:g}: "
            f"per_essay={statistics.mean(default_per):.1f} max_loss={max(default_loss):.3f}"
        )


if __name__ == "__main__":
    main()
