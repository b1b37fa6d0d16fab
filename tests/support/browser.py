"""Headless Chromium (Debian's `chromium`, installed by `make setup`) for tests of HTML pages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.devcluster import REPO_ROOT

ARTIFACTS = REPO_ROOT / ".test-artifacts"
"""Screenshots and other files a test keeps for people to look at (git-ignored)."""


def chromium() -> str:
    """Path of the chromium binary; AssertionError naming the fix when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: run `make setup` (apt-get install chromium)"
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def rendered_dom(page: Path) -> str:
    """The DOM of a local page after Chromium has parsed and laid it out."""
    return _run("--dump-dom", page.resolve().as_uri()).stdout


def screenshot(page: Path, name: str, size: tuple[int, int] = (1200, 1600)) -> Path:
    """A PNG screenshot of a local page, kept under .test-artifacts/; returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    _run(f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri())
    return out
