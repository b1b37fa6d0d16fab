"""cjctl report: the HTML page holds the ranking, the plot and the evidence, escaped."""

from __future__ import annotations

import re

from cj_operator.cli.report import render_report

STATUS = {
    "phase": "Completed",
    "completed": 3,
    "reliability": 0.81,
    "ssr": 0.77,
    "orderEffect": {"estimate": 0.12, "standardError": 0.2, "significant": False},
    "grades": {"anchors": 2},
}
ROWS = [
    {
        "essay_id": "e2",
        "rank": 1,
        "score": 1.0,
        "standard_error": 0.5,
        "comparisons": 2,
        "wins": 2,
        "outfit": 0.9,
        "misfit": False,
        "projected_grade": 4.0,
        "grade_low": 3.0,
        "grade_high": 5.0,
    },
    {
        "essay_id": "<script>alert(1)</script>",
        "rank": 2,
        "score": 0.0,
        "standard_error": 0.5,
        "comparisons": 2,
        "wins": 1,
        "outfit": 2.1,
        "misfit": True,
        "projected_grade": 3.0,
        "grade_low": 2.0,
        "grade_high": 4.0,
    },
    {
        "essay_id": "e0",
        "rank": 3,
        "score": -1.0,
        "standard_error": 0.5,
        "comparisons": 2,
        "wins": 0,
        "outfit": 0.8,
        "misfit": False,
        "projected_grade": 2.0,
        "grade_low": 1.0,
        "grade_high": 3.0,
    },
]
SUMMARY = {
    "misfitting_essays": ["<script>alert(1)</script>"],
    "judges": [
        {
            "judge": "offline/offline-quality-v1",
            "comparisons": 3,
            "agreement": 0.9,
            "order_effect": 0.1,
            "infit": 0.9,
            "outfit": 1.7,
        }
    ],
}
COMPARISONS = [
    {
        "essay_a_id": "e2",
        "essay_b_id": "e0",
        "winner": "essay_a",
        "judge": "offline/x",
        "confidence": 4,
        "justification": "Clearer argument <b>and</b> structure.",
    },
    {
        "essay_a_id": "<script>alert(1)</script>",
        "essay_b_id": "e2",
        "winner": "essay_b",
        "judge": "offline/x",
        "confidence": 3,
        "justification": "</li><img src=x onerror=alert(1)>",
    },
]


def test_the_page_shows_the_ranking_the_plot_and_the_numbers() -> None:
    page = render_report("demo", STATUS, ROWS, SUMMARY, COMPARISONS)
    assert page.startswith("<!doctype html>")
    assert "<svg" in page and "id='ranking-plot'" in page
    assert page.count("<circle") == 3
    assert "0.81" in page and "0.77" in page  # reliability and SSR
    assert "4 (3 to 5)" in page  # a projected grade with its interval
    assert "2.10 misfit" in page and "1.70 misfit" in page  # an essay and a judge flagged
    assert "won</b> against e0" in page and "lost</b> against" in page


def test_nothing_from_the_batch_can_inject_markup() -> None:
    page = render_report("demo <i>", STATUS, ROWS, SUMMARY, COMPARISONS)
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>and</b>" not in page
    assert "&lt;script&gt;" in page


def test_the_page_needs_no_network() -> None:
    page = render_report("demo", STATUS, ROWS, SUMMARY, COMPARISONS)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "<link" not in page and "<script" not in page


def test_without_comparisons_the_page_says_so() -> None:
    page = render_report("demo", STATUS, ROWS, SUMMARY, [])
    assert "comparisons were not available" in page
