"""cjctl report's page in a real browser: headless Chromium shows the ranking and the plot."""

from __future__ import annotations

from pathlib import Path

from cj_operator.cli.report import render_report
from tests.support.browser import rendered_dom, screenshot

ROWS = [
    {
        "essay_id": f"essay-{i}",
        "rank": i + 1,
        "score": 2.0 - i,
        "standard_error": 0.4,
        "comparisons": 6,
        "wins": 5 - i,
        "outfit": 1.0,
        "misfit": i == 2,
    }
    for i in range(5)
]


def test_chromium_renders_the_ranking_and_the_plot(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(
        render_report(
            "browser-check",
            {"phase": "Completed", "completed": 12, "reliability": 0.8, "ssr": 0.7},
            ROWS,
            {"judges": [], "misfitting_essays": ["essay-2"]},
            [
                {
                    "essay_a_id": "essay-0",
                    "essay_b_id": "essay-1",
                    "winner": "essay_a",
                    "judge": "offline/x",
                    "justification": "Better organised.",
                }
            ],
        ),
        encoding="utf-8",
    )
    dom = rendered_dom(page)
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="ranking plot"' in dom
    assert dom.count("<circle") == 5
    assert all(f">essay-{i}</a>" in dom for i in range(5)), "every essay is in the table"
    assert "Better organised." in dom
    shot = screenshot(page, "report.png")
    assert shot.stat().st_size > 10_000, "the screenshot shows a page, not a blank"
    print(f"screenshot: {shot}")
