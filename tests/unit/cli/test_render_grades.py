"""cjctl results: the projected-grade column appears only for batches with anchor essays."""

from __future__ import annotations

import json

from rich.console import Console

from cj_operator.cli.render import results_table


def _render(rows: list[dict[str, object]]) -> str:
    console = Console(width=200, record=True)
    console.print(results_table(json.dumps(rows), "t"))
    return console.export_text()


def test_a_batch_with_anchors_shows_each_grade_and_its_interval() -> None:
    text = _render(
        [
            {
                "essay_id": "a",
                "rank": 1,
                "score": 1.0,
                "projected_grade": 4.0,
                "grade_low": 3.0,
                "grade_high": 5.0,
            },
            {
                "essay_id": "b",
                "rank": 2,
                "score": -1.0,
                "projected_grade": 2.5,
                "grade_low": 1.5,
                "grade_high": 3.0,
            },
        ]
    )
    assert "GRADE (95%)" in text
    assert "4 [3-5]" in text
    assert "2.5 [1.5-3]" in text


def test_a_batch_without_anchors_has_no_grade_column() -> None:
    text = _render([{"essay_id": "a", "rank": 1, "score": 1.0, "projected_grade": None}])
    assert "GRADE" not in text
