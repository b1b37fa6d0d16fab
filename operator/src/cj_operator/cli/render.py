"""Tables and figures cjctl prints (pure: data in, rich renderables or text out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from cj_operator.evidence import ComparisonRow

TERMINAL_PHASES = ("Completed", "Failed", "Cancelled")


def progress_fraction(status: dict[str, Any]) -> float:
    """`status.progress` ("NN%") as a fraction 0-1; 0 when absent."""
    text = str(status.get("progress", "0%")).rstrip("%")
    try:
        return min(max(float(text) / 100.0, 0.0), 1.0)
    except ValueError:
        return 0.0


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def batch_started(obj: dict[str, Any]) -> datetime | None:
    """When the batch started: `status.startedAt`, else `metadata.creationTimestamp`; None
    when neither is a timestamp."""
    started = _timestamp((obj.get("status") or {}).get("startedAt"))
    return started or _timestamp((obj.get("metadata") or {}).get("creationTimestamp"))


def eta_seconds(started: datetime, fraction: float, now: datetime) -> float | None:
    """Seconds left if progress continues at its average rate since `started` (the batch's
    start, `batch_started`); None before any progress."""
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


def _judge(spec: dict[str, Any]) -> str:
    """`provider/model` of the spec's judge, or of each panel judge joined by `+`."""
    names = []
    for judge in spec.get("judges") or [spec.get("judge") or {}]:
        provider = judge.get("provider") or "default"
        names.append(f"{provider}/{judge['model']}" if judge.get("model") else provider)
    return "+".join(names)


def _reason(status: dict[str, Any]) -> str:
    for c in status.get("conditions") or []:
        if c.get("type") == "Succeeded" and c.get("status") != "Unknown":
            return str(c.get("reason", ""))
    return ""


def batches_table(
    items: list[dict[str, Any]], now: datetime | None = None, *, wide: bool = False
) -> Table:
    """`cjctl list`: one row per CJBatch, like `kubectl get cjb` with the essays count; `wide`
    adds round, budget, SSR, cost (USD), judge (provider/model) and the finished batch's
    reason."""
    now = now or datetime.now(UTC)
    columns = [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "ESSAYS",
        "PROGRESS",
        "COMPLETED",
        "FAILED",
        "RELIABILITY",
        "AGE",
    ]
    if wide:
        columns += ["ROUND", "BUDGET", "SSR", "COST", "JUDGE", "REASON"]
    table = Table(*columns)
    for item in items:
        meta, status = item.get("metadata", {}), item.get("status", {})
        row = [
            meta.get("namespace", ""),
            meta.get("name", ""),
            status.get("phase", "Pending"),
            str(status.get("essays", 0)),
            status.get("progress", "0%"),
            str(status.get("completed", 0)),
            str(status.get("failed", 0)),
            _num(status.get("reliability"), 2),
            _age(meta.get("creationTimestamp"), now),
        ]
        if wide:
            row += [
                str(status.get("round", 0)),
                str(status.get("budget", 0)),
                _num(status.get("ssr"), 2),
                f"${status.get('costUSD', 0.0):.4f}",
                _judge(item.get("spec") or {}),
                _reason(status),
            ]
        table.add_row(*row)
    return table


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without `metadata.managedFields` (as `kubectl get -o yaml` shows it)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def comparisons_table(rows: Sequence[ComparisonRow], title: str) -> Table:
    """`cjctl comparisons -o table`: one row per comparison request, slot A first; WINNER is
    the winning essay's id, JUDGE the panel judge asked, STATUS the error code when the
    request failed."""
    table = Table(
        "ROUND",
        "ATTEMPT",
        "ESSAY A",
        "ESSAY B",
        "WINNER",
        "CONF",
        "JUDGE",
        "COST",
        "STATUS",
        "JUSTIFICATION",
        title=title,
    )
    for r in rows:
        table.add_row(
            str(r.round),
            str(r.attempt),
            r.essay_a_id,
            r.essay_b_id,
            r.winner_id or "-",
            _num(r.confidence, 1),
            r.judge,
            f"${r.cost_usd:.4f}",
            r.error_code or r.status,
            r.justification or "",
        )
    return table


def comparisons_title(name: str, rows: Sequence[ComparisonRow]) -> str:
    """The line above the comparisons table: counts and total cost (USD)."""
    won = sum(1 for r in rows if r.winner is not None)
    failed = sum(1 for r in rows if r.status == "FAILED")
    cost = sum(r.cost_usd for r in rows)
    return (
        f"{name}: {len(rows)} comparison requests, {won} with a winner, {failed} failed, "
        f"cost ${cost:.4f}"
    )


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
