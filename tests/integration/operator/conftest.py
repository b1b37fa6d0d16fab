"""Operator integration fixtures: the CJBatch CRD installed on the real API server."""

from __future__ import annotations

import subprocess
import time

import pytest
from cj_operator.crd import CRD_PATH
from kubernetes import client as k8s_client

from tests.support.devcluster import ClusterEnv

CRD_NAME = "cjbatches.cj.huleedu.io"


@pytest.fixture(scope="session")
def cjbatch_crd(cluster: ClusterEnv, k8s_api: k8s_client.ApiClient) -> str:
    """Apply crds/cjbatch.yaml (server-side, idempotent) and wait until it is Established.

    The CRD is left installed: other tests of the session (and other suites) use it.
    """
    subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            cluster.kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=cj-operator-tests",
            "-f",
            str(CRD_PATH),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    ext = k8s_client.ApiextensionsV1Api(k8s_api)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        conditions = {
            c.type: c.status
            for c in (crd.status.conditions if crd.status and crd.status.conditions else [])
        }
        if conditions.get("Established") == "True":
            return CRD_NAME
        time.sleep(0.2)
    raise AssertionError(f"CRD {CRD_NAME} not Established after 30 s")
