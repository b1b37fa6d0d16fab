"""kubectl against the local cluster's API server, and the CJBatch CRD installed on it."""

from __future__ import annotations

import os
import subprocess

from tests.support.devcluster import REPO_ROOT, ClusterEnv

CJBATCH_CRD = REPO_ROOT / "crds" / "cjbatch.yaml"
CJBATCH_CRD_NAME = "cjbatches.cj.huleedu.io"


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message holds the command and its stderr."""


def kubectl(cluster: ClusterEnv, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run the cluster's own kubectl with its kubeconfig; returns stdout.

    Raises KubectlError when kubectl fails and `check` is true.
    """
    proc = subprocess.run(
        [str(cluster.kubectl), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
    )
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def install_cjbatch_crd(cluster: ClusterEnv) -> str:
    """Apply crds/cjbatch.yaml (server-side, idempotent, taking over fields another manager
    such as a test's helm install set) and wait until it is Established; returns its name."""
    kubectl(
        cluster,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=cj-operator-tests",
        "-f",
        str(CJBATCH_CRD),
    )
    kubectl(
        cluster, "wait", "--for=condition=Established", "--timeout=30s", f"crd/{CJBATCH_CRD_NAME}"
    )
    return CJBATCH_CRD_NAME
