"""Time pair selection on large batches (not run by `make test`).

    .venv/bin/python -m bench.pairing_scale                  # 100, 300, 1000 essays
    .venv/bin/python -m bench.pairing_scale --sizes 2000 --rounds 3

For each size: one blind first round (scores None), then rounds with noisy scores (true
ability + N(0, 0.5^2)), each seeing all earlier rounds as history. Prints the median time of
one `select_pairs` call, the pairs per round against the n // 2 possible, and the mean
|true ability gap| of the chosen pairs (random pairs: about 1.7 logits at SD 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from cj_operator.pairing.selection import select_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print("| essays | first round s | later rounds s (median) | pairs/round (min) | mean gap |")
    print("|---|---|---|---|---|")
    for n_items in args.sizes:
        rng = np.random.default_rng(n_items)
        theta = rng.normal(0.0, 1.5, size=n_items)
        history: list[tuple[int, int]] = []
        times, sizes, gaps = [], [], []
        for round_number in range(args.rounds):
            scores = None if round_number == 0 else (theta + rng.normal(0, 0.5, n_items)).tolist()
            started = time.perf_counter()
            pairs = select_pairs(n_items, scores, history, n_items // 2, seed=round_number)
            times.append(time.perf_counter() - started)
            sizes.append(len(pairs))
            if round_number > 0:
                gaps.append(float(np.mean([abs(theta[a] - theta[b]) for a, b in pairs])))
            history += pairs
        print(
            f"| {n_items} | {times[0]:.3f} | {statistics.median(times[1:]):.3f} "
            f"| {min(sizes)} of {n_items // 2} | {statistics.fmean(gaps):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
