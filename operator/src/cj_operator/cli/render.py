"""Tables and figures cjctl prints (pure: data in, rich renderables or text out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

TERMINAL_PHASES = ("Completed", "Failed", "Cancelled")


def progress_fraction(status: dict[str, Any]) -> float:
    """`status.progress` ("NN%") as a fraction 0-1; 0 when absent."""
    text = str(status.get("progress", "0%")).rstrip("%")
    try:
        return min(max(float(text) / 100.0, 0.0), 1.0)
    except ValueError:
        return 0.0


def eta_seconds(started: datetime, fraction: float, now: datetime) -> float | None:
    """Seconds left if progress continues at its average rate since `started`; None before any."""
    if fraction <= 0.0:
        return None
    elapsed = (now - started).total_seconds()
    return max(elapsed * (1.0 - fraction) / fraction, 0.0)


def format_duration(seconds: float | None) -> str:
    """`1h02m`, `3m05s`, `42s`; `-` when unknown."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return "-"
    then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return format_duration((now - then).total_seconds())


def batches_table(items: list[dict[str, Any]], now: datetime | None = None) -> Table:
    """`cjctl list`: one row per CJBatch, like `kubectl get cjb` with the essays count."""
    now = now or datetime.now(UTC)
    table = Table(
        "NAMESPACE",
        "NAME",
        "PHASE",
        "ESSAYS",
        "PROGRESS",
        "COMPLETED",
        "FAILED",
        "RELIABILITY",
        "AGE",
    )
    for item in items:
        meta, status = item.get("metadata", {}), item.get("status", {})
        reliability = status.get("reliability")
        table.add_row(
            meta.get("namespace", ""),
            meta.get("name", ""),
            status.get("phase", "Pending"),
            str(status.get("essays", 0)),
            status.get("progress", "0%"),
            str(status.get("completed", 0)),
            str(status.get("failed", 0)),
            "-" if reliability is None else f"{reliability:.2f}",
            _age(meta.get("creationTimestamp"), now),
        )
    return table


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def results_table(results_json: str, title: str) -> Table:
    """`cjctl results --format table`: rank, essay, score, SE, comparisons, wins, infit and
    outfit (`!` after an outfit above 1.5: a misfitting essay), the projected grade with its
    95% interval when the batch has anchor essays, metadata."""
    rows: list[dict[str, Any]] = json.loads(results_json)
    meta_keys = sorted({k for r in rows for k in (r.get("metadata") or {})})
    graded = any(r.get("projected_grade") is not None for r in rows)
    table = Table(
        "RANK",
        "ESSAY",
        "SCORE",
        "SE",
        "COMPARISONS",
        "WINS",
        "INFIT",
        "OUTFIT",
        *(["GRADE (95%)"] if graded else []),
        *meta_keys,
        title=title,
    )
    for r in rows:
        metadata = r.get("metadata") or {}
        table.add_row(
            "-" if r.get("rank") is None else str(r["rank"]),
            str(r["essay_id"]),
            _num(r.get("score"), 2),
            _num(r.get("standard_error"), 2),
            str(r.get("comparisons", 0)),
            str(r.get("wins", 0)),
            _num(r.get("infit"), 2),
            _num(r.get("outfit"), 2) + (" !" if r.get("misfit") else ""),
            *([_grade(r)] if graded else []),
            *(str(metadata.get(k, "")) for k in meta_keys),
        )
    return table


def _grade(row: dict[str, Any]) -> str:
    if row.get("projected_grade") is None:
        return "-"
    return f"{row['projected_grade']:g} [{row['grade_low']:g}-{row['grade_high']:g}]"


def results_title(name: str, status: dict[str, Any]) -> str:
    """The line above the results table: phase, counts, both reliabilities, order effect."""
    order = status.get("orderEffect")
    order_text = (
        "-"
        if not order
        else f"{order['estimate']:+.2f} logits for slot A (SE {order['standardError']:.2f}"
        f"{', significant' if order.get('significant') else ''})"
    )
    misfits = status.get("misfittingEssays", 0)
    return (
        f"{name}: {status.get('phase')}, {status.get('essays', 0)} essays, "
        f"{status.get('completed', 0)} comparisons, reliability "
        f"{_num(status.get('reliability'), 2)} (SSR {_num(status.get('ssr'), 2)}), "
        f"order effect {order_text}, {misfits} misfitting essay{'s' if misfits != 1 else ''}"
    )
