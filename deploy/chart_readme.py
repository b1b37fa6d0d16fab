"""The values table of the chart README, generated from the `# --` comments of values.yaml.

Each documented key of `charts/cj-operator/values.yaml` has a comment block starting with
`# -- ` directly above it (continuation lines start with `# `). A key without such a block
is a section (a mapping of documented keys). `python -m deploy.chart_readme` rewrites the
table between the `<!-- values:start -->` and `<!-- values:end -->` markers of the chart's
README.md; `--check` exits 1 when it is stale or when a leaf key has no description.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = REPO_ROOT / "charts" / "cj-operator"
START, END = "<!-- values:start -->", "<!-- values:end -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?P<rest>.*)$")


@dataclass(frozen=True)
class ValueDoc:
    """One documented key: dotted path, default (as parsed YAML) and description."""

    path: str
    default: Any
    description: str


class UndocumentedValueError(ValueError):
    """A leaf key of values.yaml (not a section) has no `# --` description."""


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def parse_values(text: str) -> list[ValueDoc]:
    """Documented keys of a values.yaml text, in file order.

    A documented key whose value is a mapping (e.g. `resources`) is one entry; its children
    are not listed. Raises UndocumentedValueError naming every leaf key (scalar, list, or
    empty mapping) that has no description.
    """
    values = yaml.safe_load(text) or {}
    docs: list[ValueDoc] = []
    missing: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing sections
    comment: list[str] = []
    opaque: int | None = None  # indent of a documented mapping: its children are its value
    for line in text.splitlines():
        stripped = line.strip()
        if opaque is not None:
            if not stripped or len(line) - len(line.lstrip(" ")) > opaque:
                continue
            opaque = None
        if stripped.startswith("# -- "):
            comment = [stripped[5:]]
            continue
        if stripped.startswith("#") and comment:
            comment.append(stripped.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if not match:
            if not stripped.startswith("#") and not stripped.startswith("-"):
                comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), match["key"]])
        value = _lookup(values, path)
        is_section = isinstance(value, dict) and bool(value)
        if comment:
            docs.append(ValueDoc(path, value, " ".join(comment)))
            if is_section:
                opaque = indent
        elif is_section:
            stack.append((indent, match["key"]))
        else:
            missing.append(path)
        comment = []
    if missing:
        raise UndocumentedValueError(
            "values.yaml keys without a `# --` description: " + ", ".join(missing)
        )
    return docs


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(docs: list[ValueDoc]) -> str:
    """A Markdown table: key, default (JSON), description."""
    lines = ["| Key | Default | Description |", "|-----|---------|-------------|"]
    for doc in docs:
        default = json.dumps(doc.default, sort_keys=True)
        lines.append(f"| `{doc.path}` | `{_cell(default)}` | {_cell(doc.description)} |")
    return "\n".join(lines)


def render_readme(readme: str, values_text: str) -> str:
    """`readme` with the text between the markers replaced by the current table.

    Raises ValueError when a marker is missing, UndocumentedValueError (see parse_values).
    """
    if START not in readme or END not in readme:
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    table = render_table(parse_values(values_text))
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the chart README's values table; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m deploy.chart_readme", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    readme_path = CHART_DIR / "README.md"
    readme = readme_path.read_text()
    try:
        expected = render_readme(readme, (CHART_DIR / "values.yaml").read_text())
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.check:
        if readme != expected:
            print(f"{readme_path} is stale: run python -m deploy.chart_readme", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(expected)
    print(f"wrote {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
