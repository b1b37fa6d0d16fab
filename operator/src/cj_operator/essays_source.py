"""Essays of a CJBatch from ConfigMaps (CSV or JSONL): parsing and checks, no I/O.

Formats (documented in docs/crd-reference.md):
- CSV (RFC 4180, UTF-8): a header row naming at least `id` and `text` (any case); every other
  column becomes metadata of each essay; a cell that is an integer or a finite decimal number
  becomes a number (`1e999` stays text), an empty cell is left out.
- JSONL: one JSON object a line, `{"id": "...", "text": "...", "metadata": {...}}`
  (`metadata` optional, an integer id is taken as its decimal string); blank lines are skipped.

A byte order mark at the start of the data (spreadsheet programs write one) is ignored. Texts
and ids hold no control characters but tab and line breaks, and metadata no NaN or infinity
(`cj_operator.spec.Essay`): PostgreSQL could not store them.

Every error names the ConfigMap, the key and the line, and nothing is stored until every
source of the batch parsed cleanly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError

from cj_operator.spec import (
    SOURCED_ESSAY_MAX_CHARS,
    SOURCED_ESSAYS_MAX,
    Essay,
    EssaySource,
)


class SourcedEssay(Essay):
    """An essay read from a ConfigMap: texts may be longer than inline ones."""

    text: str = Field(min_length=1, max_length=SOURCED_ESSAY_MAX_CHARS)


class EssaySourceError(ValueError):
    """The essays in a ConfigMap cannot be used; the message says where and why."""


class EssaySourceMissingError(LookupError):
    """A referenced ConfigMap or key does not exist (yet); the message names it."""


_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$")


def _cell_value(cell: str) -> Any:
    text = cell.strip()
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text) and math.isfinite(number := float(text)):
        return number
    return cell


BOM = "\ufeff"
"""The byte order mark some editors and spreadsheet programs put at the start of UTF-8 files."""


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_csv(text: str, where: str) -> list[SourcedEssay]:
    """Essays of a CSV document; `where` (e.g. ``configmap/essays key a.csv``) prefixes errors.

    Raises EssaySourceError for a missing header, missing id/text columns, duplicate column
    names, a row with too many cells, or an invalid essay (naming the line).
    """
    reader = csv.reader(io.StringIO(text.removeprefix(BOM), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise EssaySourceError(f"{where}: empty CSV (a header with id,text is needed)") from None
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    for required in ("id", "text"):
        if required not in lowered:
            raise EssaySourceError(f"{where}: CSV header has no '{required}' column: {names}")
    if len(set(lowered)) != len(lowered):
        raise EssaySourceError(f"{where}: CSV header repeats a column name: {names}")
    id_col, text_col = lowered.index("id"), lowered.index("text")
    essays: list[SourcedEssay] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(names):
                raise EssaySourceError(
                    f"{where} line {line}: {len(row)} cells but the header has {len(names)}"
                )
            cells = row + [""] * (len(names) - len(row))
            metadata = {
                names[i]: _cell_value(cell)
                for i, cell in enumerate(cells)
                if i not in (id_col, text_col) and cell.strip()
            }
            try:
                essays.append(
                    SourcedEssay(id=cells[id_col].strip(), text=cells[text_col], metadata=metadata)
                )
            except ValidationError as err:
                raise EssaySourceError(f"{where} line {line}: {_first_error(err)}") from None
    except csv.Error as err:
        raise EssaySourceError(f"{where} line {reader.line_num}: malformed CSV: {err}") from None
    return essays


def parse_jsonl(text: str, where: str) -> list[SourcedEssay]:
    """Essays of a JSONL document (one object a line); errors name the line.

    Raises EssaySourceError for invalid JSON, a line that is not an object, unknown keys, or
    an invalid essay.
    """
    essays: list[SourcedEssay] = []
    for number, line in enumerate(text.removeprefix(BOM).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise EssaySourceError(f"{where} line {number}: invalid JSON: {err.msg}") from None
        if not isinstance(item, dict):
            raise EssaySourceError(f"{where} line {number}: expected a JSON object")
        if isinstance(item.get("id"), int) and not isinstance(item.get("id"), bool):
            item["id"] = str(item["id"])
        try:
            essays.append(SourcedEssay.model_validate(item))
        except ValidationError as err:
            raise EssaySourceError(f"{where} line {number}: {_first_error(err)}") from None
    return essays


def _format_of(key: str, ref: EssaySource) -> str | None:
    if ref.format is not None:
        return ref.format
    if key.endswith(".csv"):
        return "csv"
    if key.endswith(".jsonl"):
        return "jsonl"
    return None


def essays_from_config_map(ref: EssaySource, data: Mapping[str, str]) -> list[SourcedEssay]:
    """The essays one `essaysFrom` entry selects from a ConfigMap's `data`.

    With `ref.key`, that key (EssaySourceMissingError when absent); otherwise every key ending in
    .csv or .jsonl (or every key, when `ref.format` is set), in sorted order. Raises
    EssaySourceError when the key's format is unknown or no key holds essays.
    """
    if ref.key is not None:
        if ref.key not in data:
            raise EssaySourceMissingError(f"configmap/{ref.config_map} has no key {ref.key!r}")
        keys = [ref.key]
    else:
        keys = sorted(k for k in data if _format_of(k, ref) is not None)
        if not keys:
            raise EssaySourceError(
                f"configmap/{ref.config_map} has no .csv or .jsonl key (keys: {sorted(data)})"
            )
    essays: list[SourcedEssay] = []
    for key in keys:
        where = f"configmap/{ref.config_map} key {key}"
        fmt = _format_of(key, ref)
        if fmt is None:
            raise EssaySourceError(
                f"{where}: unknown format; name the key .csv/.jsonl or set format"
            )
        parse = parse_csv if fmt == "csv" else parse_jsonl
        essays.extend(parse(data[key], where))
    return essays


def check_batch_essays(essays: Sequence[Essay]) -> list[Essay]:
    """All essays of a batch, checked together: ids unique, at most SOURCED_ESSAYS_MAX.

    Raises EssaySourceError naming the first repeated id. Fewer than 2 essays is not an
    error here: such a batch completes at once with reason InsufficientEssays.
    """
    if len(essays) > SOURCED_ESSAYS_MAX:
        raise EssaySourceError(
            f"{len(essays)} essays; a CJBatch holds at most {SOURCED_ESSAYS_MAX}"
        )
    seen: set[str] = set()
    for essay in essays:
        if essay.id in seen:
            raise EssaySourceError(f"essay id {essay.id!r} appears more than once")
        seen.add(essay.id)
    return list(essays)
