"""Turn a judge's structured answer into a verdict, or say exactly why it cannot.

Rules (DESIGN.md): an answer that cannot be parsed is PARSING_ERROR; a confidence outside
1-5 is INVALID_RESPONSE; nothing guesses a scale from a value and nothing defaults a winner.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from cj_workers.providers.base import JudgeError
from common_core import EssayComparisonWinner, LLMErrorCode
from common_core.bounds import strip_control_characters

_WINNERS = {
    "essay_a": EssayComparisonWinner.ESSAY_A,
    "essay_b": EssayComparisonWinner.ESSAY_B,
    "a": EssayComparisonWinner.ESSAY_A,
    "b": EssayComparisonWinner.ESSAY_B,
}
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _parsing(message: str, **details: Any) -> JudgeError:
    return JudgeError(LLMErrorCode.PARSING_ERROR, message, details=details)


class _DuplicateKeyError(ValueError):
    """A JSON object names one key twice (json.loads would keep the last silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(f"{key!r} appears twice")
        seen[key] = value
    return seen


def parse_answer_text(text: str | None) -> tuple[EssayComparisonWinner, str, float]:
    """Parse a JSON answer (optionally in a ``` fence) into (winner, justification, confidence).

    Raises `JudgeError(PARSING_ERROR)` when `text` is empty, not a JSON object, or names a key
    twice (`{"winner": "essay_a", "winner": "essay_b", ...}` has no one winner), and what
    `parse_answer` raises otherwise.
    """
    if text is None or not text.strip():
        raise _parsing("the judge returned no answer text")
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        data = json.loads(stripped, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as exc:
        raise _parsing(f"the answer is ambiguous: {exc}", answer=text[:200]) from exc
    except json.JSONDecodeError as exc:
        raise _parsing(f"the answer is not valid JSON: {exc}", answer=text[:200]) from exc
    if not isinstance(data, Mapping):
        raise _parsing("the answer is JSON but not an object", answer=text[:200])
    return parse_answer(data)


def parse_answer(data: Mapping[str, Any]) -> tuple[EssayComparisonWinner, str, float]:
    """Validate a structured answer {winner, justification, confidence}.

    `winner` must name an essay (`essay_a`/`essay_b`; "Essay A", "A" and case variants are
    the same label); `justification` a string with text besides control characters (those are
    removed from the published justification); `confidence` a number.
    Raises `JudgeError(PARSING_ERROR)` for a missing or ill-typed field or an unknown
    winner, `JudgeError(INVALID_RESPONSE)` for a confidence outside [1, 5].
    """
    missing = [k for k in ("winner", "justification", "confidence") if k not in data]
    if missing:
        raise _parsing(f"the answer lacks {', '.join(missing)}", fields=sorted(data))
    raw_winner = data["winner"]
    if not isinstance(raw_winner, str):
        raise _parsing(f"winner is not a string: {raw_winner!r}")
    key = re.sub(r"[\s-]+", "_", raw_winner.strip().lower())
    winner = _WINNERS.get(key)
    if winner is None:
        raise _parsing(f"winner {raw_winner!r} names neither essay_a nor essay_b")
    justification = data["justification"]
    if (
        not isinstance(justification, str)
        or not str(strip_control_characters(justification)).strip()
    ):
        raise _parsing("justification is missing or empty")
    confidence = data["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise _parsing(f"confidence is not a number: {confidence!r}")
    value = float(confidence)
    if not math.isfinite(value) or not 1.0 <= value <= 5.0:
        raise JudgeError(
            LLMErrorCode.INVALID_RESPONSE,
            f"confidence {confidence!r} is outside 1-5",
            details={"confidence": str(confidence)},
        )
    return winner, justification.strip(), value
