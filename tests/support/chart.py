"""Render the cj-operator chart with the real helm binary and pick the rendered objects apart.

helm is built from its Go module by hack/lib/toolchain.sh (`helm_bin_dir`, cached); the env
CJ_HELM names another binary. Used by tests/unit/deploy and tests/integration/deploy.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "cj-operator"
ALL_ON_VALUES = CHART_DIR / "ci" / "all-on-values.yaml"

Obj = dict[str, Any]


class HelmError(RuntimeError):
    """helm exited non-zero; the message holds its stderr."""


@functools.cache
def helm_binary() -> Path:
    """Path of helm: $CJ_HELM, else the toolchain's build (built on first use, then cached)."""
    if override := os.environ.get("CJ_HELM"):
        return Path(override)
    script = (
        f'source "{REPO_ROOT}/hack/lib/common.sh"; source "{REPO_ROOT}/hack/lib/toolchain.sh"; '
        "helm_bin_dir"
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=1800
    )
    if proc.returncode != 0:
        raise HelmError(f"building helm failed:\n{proc.stderr}")
    return Path(proc.stdout.strip().splitlines()[-1]) / "helm"


def helm(*args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    """Run helm with `args`; returns stdout, raises HelmError with stderr on failure."""
    proc = subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def set_args(values: Mapping[str, object]) -> list[str]:
    """`--set-json key=<json>` arguments: exact types, no helm --set string parsing."""
    return [
        arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")
    ]


def render(
    values: Mapping[str, object] | None = None,
    values_files: Sequence[Path] = (),
    *,
    release: str = "cj",
    namespace: str = "cj-system",
    extra: Sequence[str] = (),
) -> list[Obj]:
    """`helm template` the chart; returns the rendered objects (hooks included), in order.

    Raises HelmError when helm refuses (schema violation, template `fail`).
    """
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    for path in values_files:
        args += ["-f", str(path)]
    args += set_args(values or {})
    args += list(extra)
    return [doc for doc in yaml.safe_load_all(helm(*args)) if doc]


def of_kind(objects: Sequence[Obj], kind: str) -> list[Obj]:
    """The objects of one kind."""
    return [o for o in objects if o["kind"] == kind]


def one(objects: Sequence[Obj], kind: str, name_suffix: str = "") -> Obj:
    """The single object of `kind` whose name ends with `name_suffix`; AssertionError otherwise."""
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, found {len(found)}"
    return found[0]


def pod_spec(obj: Obj) -> Obj:
    """The pod spec of a Deployment or Job (its template's), or of a Pod."""
    spec: Obj = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def containers(obj: Obj) -> list[Obj]:
    """Containers (init containers included) of a Deployment's or Job's pod template, or a Pod's."""
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(objects: Sequence[Obj]) -> Iterator[Obj]:
    """Deployments, Jobs and Pods (the `helm test` pod)."""
    return (o for o in objects if o["kind"] in ("Deployment", "Job", "Pod"))


def env_of(container: Obj) -> dict[str, Obj]:
    """A container's env entries by name."""
    return {e["name"]: e for e in container.get("env", [])}


def render_notes(
    values: Mapping[str, object] | None = None,
    values_files: Sequence[Path] = (),
    *,
    release: str = "cj",
    namespace: str = "cj-system",
    extra: Sequence[str] = (),
    workdir: Path,
) -> str:
    """The chart's NOTES.txt as `helm template` renders it (no cluster: every `lookup` is empty).

    `helm template` never prints NOTES.txt, so a copy of the chart in `workdir` gets one more
    template, a ConfigMap holding `tpl` of the same NOTES.txt text with the same context.
    """
    import shutil

    chart = workdir / "cj-operator"
    shutil.copytree(CHART_DIR, chart, symlinks=False)  # files/crds/ link: copied as a file
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes-probe.txt")
    (chart / "templates" / "notes-probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-probe\ndata:\n"
        '  NOTES.txt: {{ tpl (.Files.Get "files/notes-probe.txt") . | toJson }}\n'
    )
    args = ["template", release, str(chart), "--namespace", namespace, "-s"]
    args += ["templates/notes-probe.yaml"]
    for path in values_files:
        args += ["-f", str(path)]
    args += set_args(values or {})
    args += list(extra)
    (probe,) = [doc for doc in yaml.safe_load_all(helm(*args)) if doc]
    notes: str = probe["data"]["NOTES.txt"]
    return notes
