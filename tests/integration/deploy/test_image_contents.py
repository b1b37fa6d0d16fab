"""What the images hold, two ways. The build stage of each Dockerfile is replayed step by step
(its COPY lines from the repository, its `uv sync` commands with the pinned uv) into a temporary
folder and the environment is checked; then the images `hack/images build` made with buildah
from the same Dockerfiles (no Docker engine; base images from Debian packages) are read from
their OCI archives and must hold the same distributions, the same entry points and the
configuration the Dockerfiles declare.

Differences of the replay from a real build, on purpose: packages are hard-linked from uv's
cache and no bytecode is compiled (speed); the interpreter is this machine's Python 3.11, not
the image's.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.support.chart import ALL_ON_VALUES, REPO_ROOT, containers, render, workloads
from tests.support.dockerfiles import DOCKERFILES, IMAGE_OF_REPOSITORY, instructions
from tests.support.images import OciImage, built_images


def uv_binary() -> str:
    hack = REPO_ROOT / "hack" / "lib"
    script = f'source "{hack}/common.sh"; source "{hack}/toolchain.sh"; uv_bin'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class ReplayedImage:
    """The replayed build stage: its work dir and the virtual environment the image copies."""

    src: Path
    venv: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def python(
        self, code: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin("python")), "-c", code],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, **(env or {})},
            cwd=self.src,
        )


def replay_build_stage(dockerfile: Path, root: Path) -> ReplayedImage:
    """Run the `build` stage's WORKDIR/ENV/COPY/RUN steps under `root`; raise on any step the
    replay does not understand (so a new kind of step cannot be skipped silently)."""
    steps = instructions(dockerfile)
    start = next(i for i, (w, a) in enumerate(steps) if w == "FROM" and a.endswith(" AS build"))
    end = next(i for i, (w, _) in enumerate(steps) if w == "FROM" and i > start)
    env = {
        "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    workdir = root
    venv = root / "venv"
    for word, args in steps[start + 1 : end]:
        if word == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                if key == "UV_PROJECT_ENVIRONMENT":
                    env[key] = str(venv)
                elif key not in ("UV_LINK_MODE", "UV_COMPILE_BYTECODE"):
                    env[key] = value
        elif word == "COPY" and "--from=" in args:
            continue  # the uv binary: the pinned one from the toolchain stands in
        elif word == "COPY":
            *sources, dest = shlex.split(args)
            for source in sources:
                target = workdir / dest
                origin = REPO_ROOT / source.rstrip("/")
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        target,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache"),
                    )
                else:
                    target = target / origin.name if dest.endswith("/") else target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target)
        elif word == "RUN":
            words = [w for w in shlex.split(args) if not w.startswith("--mount=")]
            assert words[:2] == ["uv", "sync"], f"the replay cannot run: RUN {args}"
            proc = subprocess.run(
                [uv_binary(), *words[1:], "--link-mode", "hardlink"],
                cwd=workdir,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            assert proc.returncode == 0, f"RUN {args} failed:\n{proc.stderr}"
        elif word != "ARG":
            raise AssertionError(f"the replay does not know {word} {args}")
    assert (venv / "bin" / "python").exists()
    return ReplayedImage(workdir, venv)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReplayedImage]:
    return {
        image: replay_build_stage(path, tmp_path_factory.mktemp(image))
        for image, path in DOCKERFILES.items()
    }


def entry_points(image: str) -> dict[str, str]:
    package = {"operator": "operator", "workers": "workers"}[image]
    project = tomllib.loads((REPO_ROOT / package / "pyproject.toml").read_text())["project"]
    return dict(project.get("scripts", {}))


def test_every_command_the_chart_runs_is_installed_and_imports(
    images: dict[str, ReplayedImage],
) -> None:
    checked = set()
    for workload in workloads(render(values_files=[ALL_ON_VALUES])):
        for container in containers(workload):
            repository = container["image"].rsplit("/", 1)[-1].split(":")[0]
            image = images[IMAGE_OF_REPOSITORY[repository]]
            command = container["command"]
            assert image.bin(command[0]).exists(), f"{command[0]} is not in the {repository} image"
            if "-m" in command:  # kopf run -m <module>: the module must import in the image
                module = command[command.index("-m") + 1]
                proc = image.python(f"import {module}")
                assert proc.returncode == 0, f"{module} does not import:\n{proc.stderr}"
            checked.add(command[0])
    assert checked == {
        "kopf",
        "cj-operator-migrate",
        "cj-provider-api",
        "cj-worker",
        "cj-bootstrap-topics",
        "cj-check",
    }


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_console_script_of_the_image_imports(
    images: dict[str, ReplayedImage], image: str
) -> None:
    for script, target in entry_points(image).items():
        module, _, attr = target.partition(":")
        proc = images[image].python(f"import {module} as m; getattr(m, {attr.split('.')[0]!r})")
        assert proc.returncode == 0, (
            f"{script} ({target}) fails in the {image} image:\n{proc.stderr}"
        )


def test_each_image_holds_only_its_own_side(images: dict[str, ReplayedImage]) -> None:
    assert images["workers"].python("import cj_operator").returncode != 0
    assert images["operator"].python("import cj_workers").returncode != 0
    for image in images.values():
        assert image.python("import pytest").returncode != 0  # no dev dependencies
        # Installed as wheels (--no-editable): the image does not need the source tree.
        for package in ("common_core", "cj_plumbing"):
            proc = image.python(
                f"import {package}, pathlib; print(pathlib.Path({package}.__file__))"
            )
            assert str(image.venv) in proc.stdout, proc.stderr


def test_the_operator_image_migrates_a_database(
    images: dict[str, ReplayedImage], database_url: str
) -> None:
    proc = subprocess.run(
        [str(images["operator"].bin("cj-operator-migrate"))],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr

    async def tables() -> set[str]:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r["tablename"] for r in rows}
        finally:
            await conn.close()

    found = asyncio.run(tables())
    assert "alembic_version" in found and len(found) > 2, found


@pytest.fixture(scope="module")
def built() -> dict[str, OciImage]:
    return {image: OciImage(path) for image, path in built_images().items()}


def distributions(dist_infos: set[str]) -> dict[str, str]:
    """`name-version.dist-info` folder names -> {normalised name: version}."""
    out = {}
    for folder in dist_infos:
        if folder.endswith(".dist-info"):
            name, _, version = folder.removesuffix(".dist-info").rpartition("-")
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def site_packages(image: OciImage) -> str:
    (lib,) = image.listdir("app/.venv/lib")
    return f"app/.venv/lib/{lib}/site-packages"


@pytest.mark.timeout(3600)  # a cold `hack/images build` takes several minutes
@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_built_image_installs_what_the_dockerfile_replay_installs(
    images: dict[str, ReplayedImage], built: dict[str, OciImage], image: str
) -> None:
    replayed = images[image]
    (replay_site,) = replayed.venv.glob("lib/python3*/site-packages")
    expected = distributions(set(os.listdir(replay_site)))
    assert len(expected) > 20, expected
    assert distributions(built[image].listdir(site_packages(built[image]))) == expected
    # The same entry points (console scripts, python links, activation scripts).
    assert built[image].listdir("app/.venv/bin") == set(os.listdir(replayed.venv / "bin"))
    assert set(entry_points(image)) <= built[image].listdir("app/.venv/bin")


@pytest.mark.timeout(3600)
def test_every_command_the_chart_runs_is_in_the_built_image(built: dict[str, OciImage]) -> None:
    for workload in workloads(render(values_files=[ALL_ON_VALUES])):
        for container in containers(workload):
            repository = container["image"].rsplit("/", 1)[-1].split(":")[0]
            image = built[IMAGE_OF_REPOSITORY[repository]]
            entry = image.files.get(f"app/.venv/bin/{container['command'][0]}")
            assert entry is not None and entry.kind == "file", (repository, container["command"])
            if "-m" in container["command"]:  # kopf run -m cj_operator.handlers
                module = container["command"][container["command"].index("-m") + 1]
                package = module.split(".")[0]
                assert f"{site_packages(image)}/{package}/__init__.py" in image.files


def runtime_stage(image: str) -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILES[image])
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start + 1 :]


def chart_app_version() -> str:
    chart = (REPO_ROOT / "charts" / "cj-operator" / "Chart.yaml").read_text()
    match = re.search(r'^appVersion: *"?([^"\n]+)"?$', chart, re.MULTILINE)
    assert match
    return match[1]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_built_image_has_the_runtime_stage_configuration(
    built: dict[str, OciImage], image: str
) -> None:
    oci = built[image]
    config = oci.config
    steps = runtime_stage(image)
    (cmd,) = [args for word, args in steps if word == "CMD"]
    assert config["Cmd"] == json.loads(cmd)
    assert config["User"] == [args for word, args in steps if word == "USER"][-1]
    assert config["WorkingDir"] == [args for word, args in steps if word == "WORKDIR"][-1]
    exposed = {f"{port}/tcp" for word, args in steps if word == "EXPOSE" for port in args.split()}
    assert set(config["ExposedPorts"]) == exposed
    env = dict(item.split("=", 1) for item in config["Env"])
    for word, args in steps:
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                assert env[key].startswith(value.replace("$PATH", "")), (key, env[key])
    assert config["Labels"]["org.opencontainers.image.title"] == f"cj-{image}"
    # Tagged with the chart's appVersion, as the chart's default values name it.
    assert oci.ref_name == f"docker.io/library/cj-{image}:{chart_app_version()}"
    # Nothing of the build stage but the environment: no sources, no uv, no caches.
    for leftover in ("src", "usr/local/bin/uv", "root/.cache", "etc/uv"):
        assert leftover not in oci.files, leftover
    # The environment's interpreter is the image's own.
    python = oci.files["app/.venv/bin/python"]
    assert python.kind == "symlink"
    target = posixpath.normpath(posixpath.join("/app/.venv/bin", python.target))
    assert oci.files[target.lstrip("/")].kind in ("file", "symlink"), target
