"""Every comparison of a batch as evidence: rows, `comparisons.csv`, JSON, the size rule (pure).

The ConfigMap `<name>-comparisons` holds `comparisons.csv`: one line per comparison request
(retries are requests of their own, `attempt` > 1), in the order they were created, with the
columns of COLUMNS. The operator writes it once, when the batch finishes, unless the CSV is
larger than its budget (CJ_OPERATOR_COMPARISONS_MAX_BYTES, at most COMPARISONS_DATA_BUDGET):
then it writes none, says so in the ComparisonsWritten condition, and the comparisons stay in
PostgreSQL only (`cjctl comparisons` reads them there when given DATABASE_URL).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator

COMPARISONS_DATA_BUDGET = 900 * 1024
"""Most bytes of `comparisons.csv` in the ConfigMap: a Kubernetes object is at most 1 MiB
(1,048,576 bytes, etcd's request limit); the rest is room for the metadata."""

COLUMNS = (
    "round",
    "attempt",
    "essay_a_id",
    "essay_b_id",
    "winner",
    "winner_id",
    "confidence",
    "judge",
    "provider",
    "model",
    "cost_usd",
    "total_tokens",
    "status",
    "error_code",
    "justification",
    "correlation_id",
    "completed_at",
)
"""Columns of `comparisons.csv`, in order. `essay_a_id` was shown to the judge in slot A;
`winner` is `essay_a` or `essay_b` (the slot), `winner_id` the winning essay's id; `judge` the
panel judge asked (`provider/model`, as summary.json's judges name it), `provider` and `model`
what answered."""

Winner = Literal["essay_a", "essay_b"]


class ComparisonRow(BaseModel):
    """One comparison request and its answer.

    `round` and `attempt` count from 1; `confidence` is 1.0-5.0 (None without a winner);
    `cost_usd` in USD; `status` PENDING, SUBMITTED, SUCCEEDED or FAILED; `error_code` an
    LLMErrorCode value (or CJ_BATCH_FINISHED for a comparison open when the batch finished);
    `judge` the panel judge asked (`provider/model`, `#<index>` when two share the name);
    `provider` and `model` the judge that answered (None before an answer).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    round: int = Field(ge=0)
    attempt: int = Field(ge=1)
    essay_a_id: str = Field(min_length=1)
    essay_b_id: str = Field(min_length=1)
    winner: Winner | None = None
    confidence: float | None = Field(default=None, ge=1.0, le=5.0)
    judge: str = Field(default="unknown/unknown", min_length=1)
    provider: str | None = None
    model: str | None = None
    cost_usd: float = Field(default=0.0, ge=0.0)
    total_tokens: int = Field(default=0, ge=0)
    status: str = Field(min_length=1)
    error_code: str | None = None
    justification: str | None = None
    correlation_id: str = Field(min_length=1)
    completed_at: datetime | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _empty_cell_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented usage
    @property
    def winner_id(self) -> str | None:
        """The winning essay's id (None without a winner)."""
        if self.winner is None:
            return None
        return self.essay_a_id if self.winner == "essay_a" else self.essay_b_id


def comparisons_config_map_name(batch_name: str) -> str:
    """`<name>-comparisons`, the ConfigMap holding a batch's comparisons."""
    return f"{batch_name}-comparisons"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def comparisons_csv(rows: Iterable[ComparisonRow]) -> str:
    """`comparisons.csv`: a header of COLUMNS, then one line per row (RFC 4180 quoting, so a
    justification may hold commas, quotes and newlines)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = row.model_dump()
        writer.writerow([_cell(values[c]) for c in COLUMNS])
    return out.getvalue()


def parse_comparisons_csv(text: str, source: str) -> list[ComparisonRow]:
    """Read `comparisons.csv` back (`source` names where it came from, for errors).

    Raises ValueError naming `source`, the line and the column when the header lacks a
    column of COLUMNS or a cell is not what its column holds.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{source}: not a comparisons CSV (no column {', '.join(missing)})")
    rows = []
    for record in reader:
        try:
            rows.append(ComparisonRow.model_validate(record))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{source}, line {reader.line_num}: {where}: {first['msg']}") from None
    return rows


def comparisons_json(rows: Sequence[ComparisonRow]) -> str:
    """A JSON array of objects with the COLUMNS keys (numbers as numbers, empty as null)."""
    dumped = (row.model_dump(mode="json") for row in rows)
    return json.dumps([{c: d[c] for c in COLUMNS} for d in dumped], indent=1, ensure_ascii=False)


def too_large_message(count: int, size: int, budget: int, batch_name: str) -> str:
    """Why `<name>-comparisons` was not written: sizes in bytes, and where to read instead."""
    return (
        f"The {count} comparisons are {size:,} bytes as CSV; configmap/"
        f"{comparisons_config_map_name(batch_name)} may hold {budget:,} "
        "(CJ_OPERATOR_COMPARISONS_MAX_BYTES; a Kubernetes object is at most 1 MiB), so none "
        "were written there. They are in PostgreSQL: cjctl comparisons "
        f"{batch_name} with DATABASE_URL set reads them."
    )
