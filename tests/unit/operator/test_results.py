"""Results rows, CSV and JSON documents, and the completion event."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any

from cj_operator.results import (
    FinishedBatch,
    ResultRow,
    completion_event,
    results_config_map_name,
    results_csv,
    results_json,
    results_summary,
)
from common_core import BatchStateEnum
from tests.support.factories import NOW

ROWS = [
    ResultRow("b", -0.5, 0.4, 2, 3, 1, {"true_score": 2.0, "rank": "x"}, infit=1.9, outfit=2.4),
    ResultRow("c", None, None, None, 0, 0, {}),
    ResultRow(
        "a",
        0.5,
        0.4,
        1,
        3,
        2,
        {"class": "7B", "tags": ["x", "y"]},
        infit=0.9,
        outfit=1.1,
        projected_grade=4.0,
        grade_low=3.0,
        grade_high=5.0,
    ),
]


def test_csv_best_first_with_metadata_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(results_csv(ROWS))))
    assert [r["essay_id"] for r in rows] == ["a", "b", "c"]
    assert list(rows[0]) == [
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
        "class",
        "metadata.rank",
        "tags",
        "true_score",
    ]
    assert rows[0]["score"] == "0.5"
    assert rows[0]["tags"] == '["x", "y"]'
    assert rows[1]["metadata.rank"] == "x"
    assert rows[2]["score"] == "" and rows[2]["rank"] == ""
    assert [(r["projected_grade"], r["grade_low"], r["grade_high"]) for r in rows] == [
        ("4.0", "3.0", "5.0"),
        ("", "", ""),
        ("", "", ""),
    ]
    assert [(r["outfit"], r["misfit"]) for r in rows] == [
        ("1.1", "False"),
        ("2.4", "True"),
        ("", "False"),
    ]


def test_json_best_first() -> None:
    doc = json.loads(results_json(ROWS))
    assert [d["essay_id"] for d in doc] == ["a", "b", "c"]
    assert doc[0] == {
        "essay_id": "a",
        "score": 0.5,
        "standard_error": 0.4,
        "rank": 1,
        "comparisons": 3,
        "wins": 2,
        "infit": 0.9,
        "outfit": 1.1,
        "misfit": False,
        "projected_grade": 4.0,
        "grade_low": 3.0,
        "grade_high": 5.0,
        "metadata": {"class": "7B", "tags": ["x", "y"]},
    }
    assert doc[2]["score"] is None


BATCH = FinishedBatch(
    uid="u",
    namespace="ns",
    name="b",
    state=BatchStateEnum.COMPLETED,
    reason="ScoresStable",
    essays=3,
    submitted=4,
    completed=3,
    failed=1,
    rounds=2,
    reliability=0.8,
    ssr=0.9,
    order_effect=0.4,
    order_effect_se=0.1,
    order_effect_p=6e-5,
    judges=[{"judge": "mock/m", "comparisons": 3, "infit": 1.0, "outfit": 1.2}],
    grade_model=None,
    provider="mock",
    model="m",
    cost_usd=0.01,
    total_tokens=500,
    started_at=NOW,
    finished_at=NOW,
)


def finished(**changes: Any) -> FinishedBatch:
    return replace(BATCH, **changes)


def test_completion_event_ranks_scored_essays_only() -> None:
    batch = finished()
    event = completion_event(batch, ROWS)
    assert [r.essay_id for r in event.rankings] == ["a", "b"]
    assert event.state == BatchStateEnum.COMPLETED
    assert event.batch_id == "u"


def test_config_map_name() -> None:
    assert results_config_map_name("essay-batch") == "essay-batch-results"


def test_summary_holds_both_reliabilities_the_order_effect_and_misfit() -> None:
    summary = json.loads(results_summary(finished(), ROWS))
    assert (summary["reliability"], summary["ssr"]) == (0.8, 0.9)
    assert summary["order_effect"] == {
        "estimate": 0.4,
        "standard_error": 0.1,
        "p_value": 6e-5,
        "significant": True,
    }
    assert summary["judges"][0]["judge"] == "mock/m"
    assert summary["misfitting_essays"] == ["b"]
    none_yet = json.loads(results_summary(finished(order_effect=None), ROWS))
    assert none_yet["order_effect"] is None
