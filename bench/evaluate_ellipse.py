"""Rank real essays through the whole system and compare with human scores (not run by make test).

    .venv/bin/python -m bench.evaluate_ellipse                 # writes docs/evaluation.md
    .venv/bin/python -m bench.evaluate_ellipse --per-essay 6 --prompts "Community service"

For each chosen ELLIPSE prompt and each judge, one CJBatch is applied with kubectl to the local
cluster, where the operator, the provider API and two workers run as processes (the same stack
as the end-to-end tests), and the script waits for it to finish. Judges:

- `offline`: the deterministic essay-quality judge (docs/offline-judge.md);
- `simulated`: winners drawn from Bradley-Terry on the human `overall` score as the true
  ability (P(A wins) = logistic(d * (overall_A - overall_B)), d = --discrimination, with
  --position-bias logits for slot A): an upper bound on what a judge that agrees with the
  human raters, up to noise, would give;
- `panel`: both of them as a panel (`spec.judges`), each answering half the comparisons.

Every `--anchor-every`-th essay (default 4) is an anchor graded with its human `overall`
score (`metadata.anchorGrade`), so every essay gets a projected grade; `grade coverage` is the
share of the other essays whose 95% grade interval holds their human score.

Per batch it prints and writes: essays, comparisons, comparisons per essay, rounds, Spearman's
rho of the Bradley-Terry scores against the human `overall` score, the squared Pearson
correlation with it (what a reliability estimates if the human score were the truth), the
reported (empirical-Bayes) reliability and the scale separation reliability, the order effect
(logits for slot A, with its SE), the essays flagged as misfitting, and wall time (apply ->
Completed). Batches run one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubernetes import config as k8s_config
from scipy.stats import pearsonr, spearmanr

from tests.support import devcluster
from tests.support.cjbatches import Batches, batch_manifest
from tests.support.devcluster import REPO_ROOT
from tests.support.ellipse import EllipseEssay, by_prompt, load_ellipse
from tests.support.kube import install_cjbatch_crd, kubectl
from tests.support.stack import Stack, isolated_stack_config

DEFAULT_PROMPTS = (
    "Success and failure",
    "Impact of technology",
    "Positive attitudes",
    "Extended school day",
    "Community service",
    "Setting our aim",
)


@dataclass(frozen=True)
class Row:
    prompt: str
    judge: str
    essays: int
    comparisons: int
    rounds: int
    rho: float
    r2: float
    reliability: float | None
    ssr: float | None
    order_effect: str
    misfitting: int
    seconds: float
    coverage: float | None = None


def _spec(
    essays: list[EllipseEssay], prompt: str, judge: str, per_essay: int, anchor_every: int
) -> dict[str, object]:
    judges = (
        {"judges": [{"provider": "offline"}, {"provider": "simulated"}]}
        if judge == "panel"
        else {"judge": {"provider": judge}}
    )
    return {
        "assignment": {"prompt": prompt},
        **judges,
        "comparisons": {"targetPerEssay": per_essay},
        "essays": [
            {
                "id": e.essay_id,
                "text": e.text,
                "metadata": {"true_score": e.overall}
                | ({"anchorGrade": e.overall} if anchor_every and i % anchor_every == 0 else {}),
            }
            for i, e in enumerate(essays)
        ],
    }


async def _run_one(
    stack: Stack,
    batches: Batches,
    name: str,
    essays: list[EllipseEssay],
    prompt: str,
    judge: str,
    per_essay: int,
    anchor_every: int,
) -> Row:
    cluster = stack.config.cluster
    started = time.monotonic()
    # Server-side apply: client-side apply would copy ~200 kB of essays into an annotation.
    kubectl(
        cluster,
        "apply",
        "--server-side",
        "-n",
        batches.namespace,
        "-f",
        "-",
        stdin=batch_manifest(name, _spec(essays, prompt, judge, per_essay, anchor_every)),
    )
    batch = await batches.wait_terminal(name, stack, within=3600)
    seconds = time.monotonic() - started
    status = batch["status"]
    rows = batches.results_rows(name)
    human = {e.essay_id: e.overall for e in essays}
    ranked = [r for r in rows if r["score"] is not None]
    scores = [r["score"] for r in ranked]
    truth = [human[r["essay_id"]] for r in ranked]
    rho = spearmanr(scores, truth).statistic
    order = status.get("orderEffect")
    others = [
        r
        for r in rows
        if r.get("projected_grade") is not None and "anchorGrade" not in r["metadata"]
    ]
    coverage = (
        sum(r["grade_low"] <= human[r["essay_id"]] <= r["grade_high"] for r in others) / len(others)
        if others
        else None
    )
    return Row(
        prompt,
        judge,
        len(essays),
        status["submitted"],
        status["round"],
        float(rho),
        float(pearsonr(scores, truth).statistic ** 2),
        status.get("reliability"),
        status.get("ssr"),
        "-" if not order else f"{order['estimate']:+.2f} ({order['standardError']:.2f})",
        int(status.get("misfittingEssays", 0)),
        seconds,
        coverage,
    )


def _table(rows: list[Row]) -> str:
    lines = [
        "| prompt | judge | essays | comparisons | per essay | rounds | Spearman vs human "
        "| r² vs human | reliability | SSR | order effect (SE) | misfitting | grade coverage "
        "| wall time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rel = "-" if r.reliability is None else f"{r.reliability:.2f}"
        ssr = "-" if r.ssr is None else f"{r.ssr:.2f}"
        coverage = "-" if r.coverage is None else f"{r.coverage:.2f}"
        lines.append(
            f"| {r.prompt} | {r.judge} | {r.essays} | {r.comparisons} | "
            f"{2 * r.comparisons / r.essays:.1f} | {r.rounds} | {r.rho:.3f} | {r.r2:.2f} | "
            f"{rel} | {ssr} | {r.order_effect} | {r.misfitting} | {coverage} | "
            f"{r.seconds:.0f} |"
        )
    for judge in sorted({r.judge for r in rows}):
        rhos = [r.rho for r in rows if r.judge == judge]
        lines.append(
            f"| **median** | {judge} | | | | | {statistics.median(rhos):.3f} | | | | | | | |"
        )
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=list(DEFAULT_PROMPTS))
    parser.add_argument("--judges", nargs="+", default=["offline", "simulated", "panel"])
    parser.add_argument("--anchor-every", type=int, default=4)
    parser.add_argument("--per-essay", type=int, default=10)
    parser.add_argument("--discrimination", type=float, default=1.5)
    parser.add_argument("--position-bias", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "evaluation.md")
    args = parser.parse_args()

    corpus = load_ellipse()
    if not devcluster.is_running():
        devcluster.up()
    cluster = devcluster.read_env()
    install_cjbatch_crd(cluster)
    api = k8s_config.new_client_from_config(config_file=cluster.kubeconfig)
    config = await isolated_stack_config(
        cluster,
        "eval",
        uuid.uuid4().hex[:8],
        provider_env={
            "CJ_WORKER_SIMULATED_DISCRIMINATION": str(args.discrimination),
            "CJ_WORKER_SIMULATED_POSITION_BIAS": str(args.position_bias),
        },
    )
    namespace = config.namespace
    assert namespace is not None
    batches = Batches(api, namespace)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(config, Path(logs))
        try:
            stack.start()
            for i, prompt in enumerate(args.prompts):
                essays = by_prompt(corpus, prompt)
                for judge in args.judges:
                    row = await _run_one(
                        stack,
                        batches,
                        f"p{i}-{judge}",
                        essays,
                        prompt,
                        judge,
                        args.per_essay,
                        args.anchor_every,
                    )
                    rows.append(row)
                    print(_table([row]).splitlines()[2], flush=True)
        finally:
            stack.stop()
    table = _table(rows)
    print(table)
    args.out.write_text(
        "# Evaluation on real essays (ELLIPSE)\n\n"
        "Written by `bench/evaluate_ellipse.py` (re-run it to re-measure). Each row is one "
        "CJBatch applied with kubectl to the local cluster and run by the whole system: "
        f"operator, provider API, two workers; {args.per_essay} comparisons per essay "
        "targeted; batches one after another on a 2-core machine. `simulated` draws winners "
        f"from Bradley-Terry on the human score (discrimination {args.discrimination}, "
        f"position bias {args.position_bias} logits for slot A). Spearman is between the "
        "batch's Bradley-Terry scores and the human `overall` score; r² is the squared "
        "Pearson correlation with it. `reliability` is what the operator reports and stops "
        "on (empirical Bayes: the share of the ability variance the comparisons pin down, "
        "measured against the judge's own view of quality, not the human raters'); `SSR` is "
        "the scale separation reliability of the same fit (docs/scoring.md). The order "
        "effect is in logits for slot A; misfitting counts essays with outfit above 1.5. "
        "`panel` is `offline` and `simulated` as one panel (spec.judges), each answering half. "
        f"Every {args.anchor_every}th essay is an anchor graded with its human score; `grade "
        "coverage` is the share of the other essays whose projected 95% grade interval holds "
        "their human score (docs/scoring.md). "
        "ELLIPSE: Crossley et al. (2023), CC BY-NC-SA 4.0, read in place from "
        "`../shared/data/ellipse`.\n\n" + table + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
