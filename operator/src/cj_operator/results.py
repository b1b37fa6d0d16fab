"""A finished batch's results: rows, `results.csv`, `results.json`, the completion event (pure).

The results ConfigMap `<name>-results` holds `results.csv` and `results.json`: one row per
essay, best first, with essay_id, score, standard_error, rank, comparisons, wins, infit,
outfit, misfit (outfit above 1.5), the projected grade with its 95% interval (projected_grade,
grade_low, grade_high; empty without anchor essays, `cj_operator.scoring.grades`) and the
essay's metadata. Essays without a score (no comparison with a winner) come last with empty
score, standard_error and rank. `summary.json` holds the batch: both reliabilities, the order
effect, the misfit of each judge and the grade model.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cj_operator.scoring.misfit import OUTFIT_THRESHOLD
from cj_operator.scoring.order_effect import SIGNIFICANCE_LEVEL
from common_core import BatchStateEnum, CJAssessmentCompletedV1, EssayRanking

BASE_COLUMNS = (
    "essay_id",
    "score",
    "standard_error",
    "rank",
    "comparisons",
    "wins",
    "infit",
    "outfit",
    "misfit",
    "projected_grade",
    "grade_low",
    "grade_high",
)
"""Columns every results row has, in CSV order; metadata columns follow, sorted."""


@dataclass(frozen=True)
class ResultRow:
    """One essay's final standing."""

    essay_id: str
    score: float | None
    standard_error: float | None
    rank: int | None
    comparisons: int
    wins: int
    metadata: dict[str, Any] = field(default_factory=dict)
    infit: float | None = None
    outfit: float | None = None
    projected_grade: float | None = None
    grade_low: float | None = None
    grade_high: float | None = None

    @property
    def misfit(self) -> bool:
        """Outfit above the threshold (1.5, cj_operator.scoring.misfit.OUTFIT_THRESHOLD)."""
        return self.outfit is not None and self.outfit > OUTFIT_THRESHOLD


def results_config_map_name(batch_name: str) -> str:
    """`<name>-results`, the ConfigMap holding a batch's full results."""
    return f"{batch_name}-results"


def order_rows(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """Ranked essays by rank, then unranked ones by id."""
    return sorted(
        rows, key=lambda r: (r.rank is None, r.rank if r.rank is not None else 0, r.essay_id)
    )


def _metadata_columns(rows: Sequence[ResultRow]) -> list[str]:
    keys = sorted({k for r in rows for k in r.metadata})
    return [f"metadata.{k}" if k in BASE_COLUMNS else k for k in keys]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def results_csv(rows: Sequence[ResultRow]) -> str:
    """`results.csv`: header BASE_COLUMNS + metadata keys; one line per essay, best first.

    A metadata key equal to a base column is written as `metadata.<key>`; nested metadata
    values are JSON.
    """
    ordered = order_rows(rows)
    meta_keys = sorted({k for r in ordered for k in r.metadata})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*BASE_COLUMNS, *_metadata_columns(ordered)])
    for r in ordered:
        base = [
            r.essay_id,
            r.score,
            r.standard_error,
            r.rank,
            r.comparisons,
            r.wins,
            r.infit,
            r.outfit,
            r.misfit,
            r.projected_grade,
            r.grade_low,
            r.grade_high,
        ]
        writer.writerow([_cell(v) for v in base] + [_cell(r.metadata.get(k)) for k in meta_keys])
    return out.getvalue()


def results_json(rows: Sequence[ResultRow]) -> str:
    """`results.json`: a JSON array of objects with BASE_COLUMNS and `metadata`, best first."""
    return json.dumps(
        [
            {
                "essay_id": r.essay_id,
                "score": r.score,
                "standard_error": r.standard_error,
                "rank": r.rank,
                "comparisons": r.comparisons,
                "wins": r.wins,
                "infit": r.infit,
                "outfit": r.outfit,
                "misfit": r.misfit,
                "projected_grade": r.projected_grade,
                "grade_low": r.grade_low,
                "grade_high": r.grade_high,
                "metadata": r.metadata,
            }
            for r in order_rows(rows)
        ],
        indent=1,
        sort_keys=False,
    )


@dataclass(frozen=True)
class FinishedBatch:
    """What the completion event reports about a batch."""

    uid: str
    namespace: str
    name: str
    state: BatchStateEnum
    reason: str
    essays: int
    submitted: int
    completed: int
    failed: int
    rounds: int
    reliability: float | None
    ssr: float | None
    order_effect: float | None
    order_effect_se: float | None
    order_effect_p: float | None
    judges: list[dict[str, Any]]
    grade_model: dict[str, Any] | None
    provider: str
    model: str
    cost_usd: float
    total_tokens: int
    started_at: datetime
    finished_at: datetime


def results_summary(batch: FinishedBatch, rows: Sequence[ResultRow]) -> str:
    """`summary.json`: the batch's reliabilities, order effect (logits, with its standard error,
    p value and whether p < 0.01), per-judge infit/outfit and the misfitting essays' ids."""
    significant = batch.order_effect_p is not None and batch.order_effect_p < SIGNIFICANCE_LEVEL
    return json.dumps(
        {
            "state": batch.state.value,
            "reason": batch.reason,
            "essays": batch.essays,
            "comparisons": batch.completed,
            "reliability": batch.reliability,
            "ssr": batch.ssr,
            "order_effect": None
            if batch.order_effect is None
            else {
                "estimate": batch.order_effect,
                "standard_error": batch.order_effect_se,
                "p_value": batch.order_effect_p,
                "significant": significant,
            },
            "judges": batch.judges,
            "outfit_threshold": OUTFIT_THRESHOLD,
            "misfitting_essays": [r.essay_id for r in order_rows(rows) if r.misfit],
            "grades": batch.grade_model,
        },
        indent=1,
    )


def completion_event(batch: FinishedBatch, rows: Sequence[ResultRow]) -> CJAssessmentCompletedV1:
    """The CJAssessmentCompletedV1 payload: counts, model, cost and the ranked essays."""
    rankings = [
        EssayRanking(
            essay_id=r.essay_id,
            score=r.score,
            standard_error=r.standard_error,
            rank=r.rank,
            comparisons=r.comparisons,
            wins=r.wins,
        )
        for r in order_rows(rows)
        if r.score is not None and r.standard_error is not None and r.rank is not None
    ]
    return CJAssessmentCompletedV1(
        batch_id=batch.uid,
        namespace=batch.namespace,
        name=batch.name,
        state=batch.state,
        reason=batch.reason,
        essays=batch.essays,
        submitted=batch.submitted,
        completed=batch.completed,
        failed=batch.failed,
        rounds=batch.rounds,
        reliability=batch.reliability,
        provider=batch.provider,
        model=batch.model,
        cost_usd=batch.cost_usd,
        total_tokens=batch.total_tokens,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        rankings=rankings,
    )
