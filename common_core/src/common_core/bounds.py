"""Bounds every stored contract field keeps, so one event can never jam a consumer's database.

The operator stores results in PostgreSQL: integers in `integer` columns (below 2^31), text in
`text`/`varchar(n)` columns, which refuse NUL. Contracts enforce the same bounds, so an event
that would not fit is refused at the edge with a validation message (and dead-lettered by a
consumer) instead of failing a database transaction over and over.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

INT32_MAX = 2**31 - 1
"""Largest value of a PostgreSQL `integer` column."""

MODEL_NAME_MAX_CHARS = 200
"""Longest model name (the operator's `model` column is varchar(200))."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 control characters and DEL, except tab, line feed and carriage return."""


def reject_control_characters(text: str) -> str:
    """`text` unchanged; raises ValueError naming the first control character (NUL included)."""
    found = _CONTROL.search(text)
    if found is not None:
        raise ValueError(
            f"control character {found.group()!r} at position {found.start()} is not allowed"
        )
    return text


def strip_control_characters(text: object) -> object:
    """`text` without control characters (tab, line feed, carriage return kept); other
    values unchanged. For text that comes from exception messages, which must always be
    reportable."""
    return _CONTROL.sub("", text) if isinstance(text, str) else text


Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A count or duration that fits a PostgreSQL `integer` column."""

PlainText = Annotated[str, AfterValidator(reject_control_characters)]
"""Text without control characters (tab, line feed and carriage return allowed)."""

CleanedText = Annotated[str, BeforeValidator(strip_control_characters)]
"""Text whose control characters are removed rather than refused."""
