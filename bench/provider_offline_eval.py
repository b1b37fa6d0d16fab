"""Measure the offline judge's essay_quality against human scores on ELLIPSE.

    .venv/bin/python -m bench.provider_offline_eval              # per-prompt table (markdown)
    .venv/bin/python -m bench.provider_offline_eval --update-doc # also rewrite the table in
                                                                 # docs/offline-judge.md
    .venv/bin/python -m bench.provider_offline_eval --fit        # re-derive the constants

Reads the corpus in place from $CJ_ELLIPSE_DIR or ../shared/data/ellipse (never copied).
Spearman's rho and Kendall's tau-b are computed per prompt between essay_quality and the
human `overall` score. `--fit` standardises each feature over the corpus, fits a ridge
regression of `overall` on them and prints the constants to paste into
cj_workers/providers/offline.py, with the leave-one-prompt-out (LOPO) median of the same
procedure: the honest estimate for unseen prompts.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from cj_workers.providers.offline import FEATURE_NAMES, essay_features, essay_quality

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "offline-judge.md"
BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"
RIDGE_ALPHA = 10.0
BASELINE = ("log_words", "mattr", "mean_word_length", "mean_sentence_length", "misspelled_rate")
"""A plain z-sum of five surface features, for comparison (sentence length counted negative)."""


def load(path: Path) -> list[tuple[str, float, str]]:
    """(prompt, overall, text) of every essay in `path`/essays.csv."""
    with (path / "essays.csv").open(newline="", encoding="utf-8") as f:
        return [(r["prompt"], float(r["overall"]), r["full_text"]) for r in csv.DictReader(f)]


def per_prompt(
    prompts: list[str], scores: np.ndarray, human: np.ndarray
) -> dict[str, tuple[int, float, float]]:
    """prompt -> (essays, Spearman rho, Kendall tau) of `scores` vs `human`."""
    out: dict[str, tuple[int, float, float]] = {}
    arr = np.array(prompts)
    for p in sorted(set(prompts)):
        m = arr == p
        rho = float(spearmanr(scores[m], human[m]).statistic)
        tau = float(kendalltau(scores[m], human[m]).statistic)
        out[p] = (int(m.sum()), rho, tau)
    return out


def fit(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge weights (no intercept penalty) of y on standardised features z."""
    x = np.c_[z, np.ones(len(y))]
    penalty = RIDGE_ALPHA * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)[:-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="re-derive the feature constants")
    parser.add_argument("--update-doc", action="store_true", help="rewrite the doc's table")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("CJ_ELLIPSE_DIR") or REPO_ROOT.parent / "shared/data/ellipse")
    if not (data_dir / "essays.csv").exists():
        print(f"ELLIPSE not found at {data_dir} (set CJ_ELLIPSE_DIR)", file=sys.stderr)
        return 2
    essays = load(data_dir)
    prompts = [p for p, _, _ in essays]
    human = np.array([o for _, o, _ in essays])
    feats = np.array([[essay_features(t)[n] for n in FEATURE_NAMES] for _, _, t in essays])

    if args.fit:
        mean, sd = feats.mean(axis=0), feats.std(axis=0)
        z = (feats - mean) / sd
        weights = fit(z, human)
        weights = weights / np.abs(weights).max()
        print("FEATURE_SCALE = {")
        for n, m, s in zip(FEATURE_NAMES, mean, sd, strict=True):
            print(f'    "{n}": ({m:.4g}, {s:.4g}),')
        print("}\nFEATURE_WEIGHTS = {")
        for n, w in zip(FEATURE_NAMES, weights, strict=True):
            print(f'    "{n}": {w:.2f},')
        print("}")
        arr = np.array(prompts)
        lopo = []
        for p in sorted(set(prompts)):
            m = arr == p
            w = fit(z[~m], human[~m])
            lopo.append(float(spearmanr(z[m] @ w, human[m]).statistic))
        print(f"LOPO median Spearman of the fitted procedure: {statistics.median(lopo):.3f}")
        return 0

    quality = np.array([essay_quality(t) for _, _, t in essays])
    table = per_prompt(prompts, quality, human)
    idx = [FEATURE_NAMES.index(n) for n in BASELINE]
    base_z = (feats[:, idx] - feats[:, idx].mean(0)) / feats[:, idx].std(0)
    base_z[:, BASELINE.index("mean_sentence_length")] *= -1
    base_z[:, BASELINE.index("misspelled_rate")] *= -1
    baseline = per_prompt(prompts, base_z.sum(axis=1), human)
    rhos = [r for _, r, _ in table.values()]
    taus = [t for _, _, t in table.values()]
    lines = [
        "| prompt | essays | Spearman rho | Kendall tau | baseline rho |",
        "|---|---:|---:|---:|---:|",
    ]
    for p, (count, rho, tau) in table.items():
        lines.append(f"| {p} | {count} | {rho:.3f} | {tau:.3f} | {baseline[p][1]:.3f} |")
    lines.append(
        f"| **median over {len(table)} prompts** | {len(essays)} | "
        f"**{statistics.median(rhos):.3f}** | {statistics.median(taus):.3f} | "
        f"{statistics.median(r for _, r, _ in baseline.values()):.3f} |"
    )
    lines.append(
        f"\nMinimum rho {min(rhos):.3f}, maximum {max(rhos):.3f}; "
        f"{sum(r >= 0.55 for r in rhos)} of {len(rhos)} prompts at 0.55 or above. "
        f"Pooled over all essays: rho {float(spearmanr(quality, human).statistic):.3f}."
    )
    text = "\n".join(lines)
    print(text)
    if args.update_doc:
        doc = DOC.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
        if not pattern.search(doc):
            print(f"{DOC} has no {BEGIN} ... {END} block", file=sys.stderr)
            return 1
        DOC.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc), encoding="utf-8")
        print(f"updated {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
