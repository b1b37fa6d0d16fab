"""Read a user's essays from a CSV file or a folder of text files (no cluster I/O).

CSV: a header with `id` and `text` (any case); other columns become each essay's metadata,
exactly as the operator reads CSV from a ConfigMap (`cj_operator.essays_source.parse_csv`).
Folder: every `*.txt` and `*.md` file is one essay, its id the file name without suffix.
"""

from __future__ import annotations

from pathlib import Path

from cj_operator.essays_source import (
    EssaySourceError,
    SourcedEssay,
    check_batch_essays,
    parse_csv,
)

ESSAY_FILE_SUFFIXES = (".txt", ".md")


class EssayInputError(ValueError):
    """The essays cannot be submitted; the message names the file and the problem."""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise EssayInputError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    except OSError as err:
        raise EssayInputError(f"{path}: cannot read: {err.strerror}") from None


def _from_folder(folder: Path) -> list[SourcedEssay]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in ESSAY_FILE_SUFFIXES)
    if not files:
        raise EssayInputError(f"{folder}: no .txt or .md files")
    essays = []
    for path in files:
        text = _read_text(path)
        if not text.strip():
            raise EssayInputError(f"{path}: the essay is empty")
        try:
            essays.append(SourcedEssay(id=path.stem, text=text))
        except ValueError as err:
            raise EssayInputError(f"{path}: {err}") from None
    return essays


def read_essays(path: Path) -> list[SourcedEssay]:
    """The essays at `path` (a CSV file or a folder), checked as the operator checks them.

    Raises EssayInputError for an unreadable or missing path, a CSV without id/text columns,
    an empty essay, duplicate ids, or fewer than 2 essays.
    """
    if not path.exists():
        raise EssayInputError(f"{path}: no such file or folder")
    if path.is_dir():
        essays = _from_folder(path)
    elif path.suffix.lower() == ".csv":
        try:
            essays = parse_csv(_read_text(path), str(path))
        except EssaySourceError as err:
            raise EssayInputError(str(err)) from None
    else:
        raise EssayInputError(f"{path}: expected a .csv file or a folder of .txt/.md files")
    try:
        check_batch_essays(essays)
    except EssaySourceError as err:
        raise EssayInputError(f"{path}: {err}") from None
    if len(essays) < 2:
        raise EssayInputError(f"{path}: {len(essays)} essay(s); comparing needs at least 2")
    return essays
