"""Read the ELLIPSE evaluation essays in place (never copied into the repository).

The corpus (CC BY-NC-SA 4.0) lives outside the clone, by default at `../shared/data/ellipse`
relative to the repository root; `CJ_ELLIPSE_DIR` overrides. A user's clone usually has no
copy: tests that need it skip with a message, except under `CI=true`, where a missing corpus
fails the run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.devcluster import REPO_ROOT


@dataclass(frozen=True)
class EllipseEssay:
    """One essay with its holistic human score (`overall`, 1.0-5.0 in steps of 0.5)."""

    essay_id: str
    prompt: str
    grade: int
    overall: float
    text: str


def ellipse_dir() -> Path:
    """Where the corpus is expected: $CJ_ELLIPSE_DIR or ../shared/data/ellipse."""
    configured = os.environ.get("CJ_ELLIPSE_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "ellipse"


def load_ellipse() -> list[EllipseEssay]:
    """All essays of the corpus; raises FileNotFoundError when essays.csv is missing."""
    path = ellipse_dir() / "essays.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return [
            EllipseEssay(
                essay_id=row["essay_id"],
                prompt=row["prompt"],
                grade=int(row["grade"]),
                overall=float(row["overall"]),
                text=row["full_text"],
            )
            for row in csv.DictReader(f)
        ]


def require_ellipse() -> list[EllipseEssay]:
    """The corpus for a test: skips when it is missing, but fails under CI=true."""
    try:
        return load_ellipse()
    except FileNotFoundError:
        message = (
            f"ELLIPSE essays not found at {ellipse_dir()} (set CJ_ELLIPSE_DIR to the folder "
            "holding essays.csv)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires the data", pytrace=False)
        pytest.skip(message)


def by_prompt(essays: list[EllipseEssay], prompt: str) -> list[EllipseEssay]:
    """The essays written to one prompt; raises KeyError naming the prompt when none are."""
    chosen = [e for e in essays if e.prompt == prompt]
    if not chosen:
        raise KeyError(f"no ELLIPSE essays for prompt {prompt!r}")
    return chosen
