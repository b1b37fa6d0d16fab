"""The project's Dockerfiles and a reader of their instructions (no Docker engine needed).

Used by tests/unit/deploy (the rules the Dockerfiles follow) and tests/integration/deploy (the
build stage replayed with uv).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.chart import REPO_ROOT

DOCKERFILES = {
    "operator": REPO_ROOT / "docker" / "operator.Dockerfile",
    "workers": REPO_ROOT / "docker" / "workers.Dockerfile",
}
"""Image name -> its Dockerfile."""

IMAGE_OF_REPOSITORY = {"cj-operator": "operator", "cj-workers": "workers"}
"""Image repository in the chart's values -> image name (a key of DOCKERFILES)."""


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out
