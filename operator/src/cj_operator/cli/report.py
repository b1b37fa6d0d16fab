"""`cjctl report`: one self-contained HTML file a teacher reads (pure; no network at view time).

The page holds, for a finished batch: the ranking with each essay's score and 95% interval as
an inline SVG plot, the projected grades where anchors exist, the honest reliability (empirical
Bayes) beside SSR, the order effect, the misfitting essays and judges flagged, and per essay
its comparisons with the judges' justifications. Every value taken from the batch (essay ids,
metadata, justifications, judge names) is HTML-escaped: a justification or an essay id can not
inject markup or script into the page. No external stylesheet, script, font or image.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_report"]

Z_95 = 1.959964
"""Two-sided 95% normal quantile: the interval is score +- 1.96 SE."""
OUTFIT_FLAG = 1.5

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:60rem;
color:#1b1f24;line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.5rem}
.fact{background:#f3f5f7;border-radius:6px;padding:.5rem .75rem}
.fact b{display:block;font-size:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #dde1e5;padding:.25rem .5rem;text-align:left}
th{background:#f3f5f7}.flag{color:#b42318;font-weight:600}
details{margin:.25rem 0}summary{cursor:pointer}
.muted{color:#5b6470}svg text{font-size:11px;font-family:inherit}
"""


def render_report(
    name: str,
    status: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    comparisons: Sequence[Mapping[str, Any]],
) -> str:
    """The report page for one batch.

    Args:
        name: the CJBatch's name.
        status: its `.status` (phase, reliability, ssr, orderEffect, completed, ...).
        rows: `results.json` rows, best first (essay_id, score, standard_error, rank,
            comparisons, wins, outfit, misfit, projected_grade, grade_low, grade_high).
        summary: `summary.json` (judges with infit/outfit/agreement, grades).
        comparisons: every comparison (`cjctl comparisons -o json`): essay_a_id, essay_b_id,
            winner ("essay_a"/"essay_b" or None), judge, confidence, justification.

    Returns:
        A complete HTML document (UTF-8 text).
    """
    e = html.escape
    graded = any(r.get("projected_grade") is not None for r in rows)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(name)}: comparative judgement report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(name)}</h1>",
        f"<p class='muted'>{e(str(status.get('phase', '')))}: {len(rows)} essays, "
        f"{int(status.get('completed', 0))} comparisons with a winner.</p>",
        _facts(status, summary),
        "<h2>Ranking</h2>",
        "<p class='muted'>Each essay's score (logits, Bradley-Terry) with its 95% interval "
        "(score &plusmn; 1.96 standard errors). Overlapping intervals: the order of those "
        "essays is not certain.</p>",
        _plot(rows),
        _ranking_table(rows, graded),
        _judges(summary),
        "<h2>The evidence, essay by essay</h2>",
        _evidence(rows, comparisons),
        "</body></html>",
    ]
    return "\n".join(parts)


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    return f"{value:.{digits}f}"


def _facts(status: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    order = status.get("orderEffect") or {}
    order_text = (
        "&ndash;"
        if not order
        else f"{order['estimate']:+.2f} (SE {order['standardError']:.2f})"
        + (" <span class='flag'>significant</span>" if order.get("significant") else "")
    )
    misfits = summary.get("misfitting_essays") or []
    facts = [
        (
            "Reliability",
            _number(status.get("reliability")),
            "empirical Bayes: honest under adaptive pairing",
        ),
        ("SSR", _number(status.get("ssr")), "scale separation reliability, for comparison"),
        ("Order effect", order_text, "logits in favour of the essay shown first"),
        ("Misfitting essays", str(len(misfits)), "outfit above 1.5: judged inconsistently"),
    ]
    grades = status.get("grades") or summary.get("grades")
    if grades:
        facts.append(("Anchors", str(grades.get("anchors", 0)), "essays with a known grade"))
    cells = "".join(
        f"<div class='fact'>{html.escape(label)}<b>{value}</b>"
        f"<span class='muted'>{html.escape(note)}</span></div>"
        for label, value, note in facts
    )
    return f"<div class='facts'>{cells}</div>"


def _plot(rows: Sequence[Mapping[str, Any]]) -> str:
    ranked = [r for r in rows if r.get("score") is not None and r.get("standard_error")]
    if not ranked:
        return "<p>No essay has a score yet.</p>"
    lows = [r["score"] - Z_95 * r["standard_error"] for r in ranked]
    highs = [r["score"] + Z_95 * r["standard_error"] for r in ranked]
    lo, hi = min(lows), max(highs)
    span = (hi - lo) or 1.0
    row_h, left, width = 16, 140, 460
    height = row_h * len(ranked) + 30

    def x(v: float) -> float:
        return float(left + (v - lo) / span * width)

    items = [
        f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='ranking plot' "
        f"width='{left + width + 20}' height='{height}' id='ranking-plot'>",
        f"<line x1='{x(0):.1f}' x2='{x(0):.1f}' y1='0' y2='{height - 20}' stroke='#c5cbd3' "
        "stroke-dasharray='3,3'/>",
    ]
    for i, (r, low, high) in enumerate(zip(ranked, lows, highs, strict=True)):
        y = row_h * i + 10
        colour = "#b42318" if r.get("misfit") else "#1f5fbf"
        label = html.escape(f"{r.get('rank', '')}. {r['essay_id']}")[:40]
        items.append(
            f"<text x='{left - 6}' y='{y + 4}' text-anchor='end'>{label}</text>"
            f"<line x1='{x(low):.1f}' x2='{x(high):.1f}' y1='{y}' y2='{y}' stroke='{colour}' "
            "stroke-width='2'/>"
            f"<circle cx='{x(r['score']):.1f}' cy='{y}' r='3.5' fill='{colour}'/>"
        )
    axis_y = height - 8
    for tick in _ticks(lo, hi):
        items.append(f"<text x='{x(tick):.1f}' y='{axis_y}' text-anchor='middle'>{tick:g}</text>")
    items.append("</svg>")
    return "".join(items)


def _ticks(lo: float, hi: float) -> list[float]:
    step = max(1.0, round((hi - lo) / 6))
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) // step) + 1)]


def _ranking_table(rows: Sequence[Mapping[str, Any]], graded: bool) -> str:
    e = html.escape
    head = "<tr><th>Rank</th><th>Essay</th><th>Score</th><th>95% interval</th>"
    head += "<th>Comparisons</th><th>Wins</th><th>Outfit</th>"
    head += "<th>Projected grade (95%)</th></tr>" if graded else "</tr>"
    body = []
    for r in rows:
        score, se = r.get("score"), r.get("standard_error")
        interval = (
            f"{score - Z_95 * se:.2f} to {score + Z_95 * se:.2f}"
            if score is not None and se is not None
            else "&ndash;"
        )
        outfit = _number(r.get("outfit"))
        if r.get("misfit"):
            outfit = f"<span class='flag'>{outfit} misfit</span>"
        cells = [
            e(str(r.get("rank") or "-")),
            f"<a href='#essay-{_anchor(r['essay_id'])}'>{e(str(r['essay_id']))}</a>",
            _number(score),
            interval,
            str(r.get("comparisons", 0)),
            str(r.get("wins", 0)),
            outfit,
        ]
        if graded:
            cells.append(
                "&ndash;"
                if r.get("projected_grade") is None
                else f"{r['projected_grade']:g} ({r['grade_low']:g} to {r['grade_high']:g})"
            )
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table id='ranking'>{head}{''.join(body)}</table>"


def _judges(summary: Mapping[str, Any]) -> str:
    judges = summary.get("judges") or []
    if not judges:
        return ""
    e = html.escape
    rows = []
    for j in judges:
        outfit = j.get("outfit")
        flag = outfit is not None and outfit > OUTFIT_FLAG
        rows.append(
            "<tr>"
            f"<td>{e(str(j.get('judge', '')))}</td><td>{j.get('comparisons', 0)}</td>"
            f"<td>{_number(j.get('agreement'))}</td><td>{_number(j.get('order_effect'))}</td>"
            f"<td>{_number(j.get('infit'))}</td>"
            f"<td>{'<span class=flag>' if flag else ''}{_number(outfit)}"
            f"{' misfit</span>' if flag else ''}</td></tr>"
        )
    return (
        "<h2>Judges</h2><table id='judges'><tr><th>Judge</th><th>Comparisons</th>"
        "<th>Agreement with the scale</th><th>Order effect</th><th>Infit</th><th>Outfit</th>"
        "</tr>" + "".join(rows) + "</table>"
    )


def _anchor(essay_id: Any) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(essay_id))


def _evidence(rows: Sequence[Mapping[str, Any]], comparisons: Sequence[Mapping[str, Any]]) -> str:
    e = html.escape
    by_essay: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for c in comparisons:
        by_essay[str(c.get("essay_a_id"))].append(c)
        by_essay[str(c.get("essay_b_id"))].append(c)
    if not comparisons:
        return "<p class='muted'>The comparisons were not available for this report.</p>"
    sections = []
    for r in rows:
        essay = str(r["essay_id"])
        items = []
        for c in by_essay.get(essay, []):
            a, b = str(c.get("essay_a_id")), str(c.get("essay_b_id"))
            other = b if a == essay else a
            winner = c.get("winner")
            won_by = a if winner == "essay_a" else b if winner == "essay_b" else None
            verdict = "no verdict" if won_by is None else ("won" if won_by == essay else "lost")
            confidence = c.get("confidence")
            items.append(
                f"<li><b>{verdict}</b> against {e(other)} "
                f"<span class='muted'>({e(str(c.get('judge') or 'judge'))}"
                f"{f', confidence {confidence:g}' if isinstance(confidence, int | float) else ''}"
                f")</span>: {e(str(c.get('justification') or ''))}</li>"
            )
        sections.append(
            f"<details id='essay-{_anchor(essay)}'><summary>{e(str(r.get('rank') or '-'))}. "
            f"{e(essay)}: {len(items)} comparison{'' if len(items) == 1 else 's'}</summary>"
            f"<ul>{''.join(items)}</ul></details>"
        )
    return "".join(sections)
