"""The peering gate follows a real ClusterKopfPeering the way kopf does.

Two operator processes cannot watch all namespaces of the shared test cluster safely (they would
take other suites' CJBatches), so this test plays the other replica by writing its entry in the
peering object's status, as kopf's keep-alive does.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s_client

from cj_operator.crd import CRD_PATH
from cj_operator.k8s_io import KubernetesApi
from cj_operator.leadership import PeeringGate
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import unique_name

PEERING_CRDS = CRD_PATH.parent / "kopf-peering.yaml"


@pytest.fixture
def peering(cluster: ClusterEnv, k8s_api: k8s_client.ApiClient) -> Iterator[str]:
    """A fresh ClusterKopfPeering (its CRDs applied first); deleted afterwards."""
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
            str(PEERING_CRDS),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    custom = k8s_client.CustomObjectsApi(k8s_api)
    name = unique_name("cj-test-peering-")
    body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    deadline = time.monotonic() + 30
    while True:
        try:
            custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
            break
        except k8s_client.ApiException as exc:  # the new CRD may take a moment to serve
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield name
    custom.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)


def _announce(api: k8s_client.ApiClient, name: str, peer: str, priority: int, age: float) -> None:
    seen = datetime.now(UTC) - timedelta(seconds=age)
    k8s_client.CustomObjectsApi(api).patch_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        name,
        {"status": {peer: {"priority": priority, "lifetime": 60, "lastseen": seen.isoformat()}}},
        _content_type="application/merge-patch+json",
    )


async def _becomes(gate: PeeringGate, active: bool, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while gate.active.is_set() != active:
        assert time.monotonic() < deadline, f"gate not {'active' if active else 'standby'}"
        await asyncio.sleep(0.05)


async def test_only_the_highest_priority_live_replica_is_active(
    k8s_api: k8s_client.ApiClient, peering: str
) -> None:
    gate = PeeringGate(
        kube=KubernetesApi(k8s_api),
        peering_name=peering,
        identity="pod-a",
        priority=10,
        standalone=False,
        poll_seconds=0.1,
    )
    task = asyncio.create_task(gate.run())
    try:
        await asyncio.sleep(0.3)
        assert not gate.active.is_set()  # not announced yet: kopf has not registered us
        _announce(k8s_api, peering, "pod-a", 10, age=0)
        await _becomes(gate, True)
        _announce(k8s_api, peering, "pod-b", 20, age=0)  # a higher-priority replica arrives
        await _becomes(gate, False)
        _announce(k8s_api, peering, "pod-b", 20, age=120)  # ... and dies
        await _becomes(gate, True)
        _announce(k8s_api, peering, "pod-c", 10, age=0)  # same priority: kopf pauses both
        await _becomes(gate, False)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_standalone_is_always_active() -> None:
    gate = PeeringGate(kube=None, peering_name="x", identity=None, priority=0, standalone=True)
    await gate.run()
    assert gate.active.is_set()
