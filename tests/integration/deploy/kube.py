"""Objects of the chart on the local cluster's real API server (kubectl from tests.support.kube)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from tests.support.chart import Obj
from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl

CRD_DIR = Path(__file__).parent / "crds"


def dump(objects: Sequence[Obj]) -> str:
    """Objects as one multi-document YAML stream."""
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def ensure_crds(cluster: ClusterEnv, crds: Sequence[Obj]) -> None:
    """Create each CRD that does not exist yet (and wait until Established); validate the
    others with a server-side dry run. CRDs are cluster-wide and shared by every test and
    helper, so an existing one is never changed or deleted here."""
    for crd in crds:
        name = crd["metadata"]["name"]
        exists = kubectl(cluster, "get", "crd", name, "-o", "name", check=False).strip()
        if exists:
            kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=dump([crd]))
            continue
        kubectl(cluster, "create", "-f", "-", stdin=dump([crd]), check=False)
        kubectl(cluster, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def minimal_third_party_crds() -> list[Obj]:
    """The test's stand-ins for the Prometheus Operator's and KEDA's CRDs."""
    return [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def server_dry_run(cluster: ClusterEnv, objects: Sequence[Obj], namespace: str) -> list[str]:
    """Apply `objects` with a server-side dry run and strict field validation (unknown or
    duplicate fields are errors); returns kubectl's result lines. Raises KubectlError."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(dump(objects))
        path = f.name
    try:
        out = kubectl(
            cluster,
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-n",
            namespace,
            "-f",
            path,
        )
    finally:
        os.unlink(path)
    return [line for line in out.splitlines() if line.strip()]
