"""Every object the chart renders is accepted by the real kube-apiserver (server-side dry run).

The CRDs go first: the chart's own (CJBatch, kopf peering) and the test's minimal stand-ins
for the Prometheus Operator's and KEDA's (tests/integration/deploy/crds), which keep the
upstream field names and types, so strict field validation still catches a wrong field.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.kube import ensure_crds, minimal_third_party_crds, server_dry_run
from tests.support.chart import ALL_ON_VALUES, REPO_ROOT, Obj, render
from tests.support.devcluster import ClusterEnv
from tests.support.kube import KubectlError

CASES: dict[str, tuple[dict[str, object], list[Path]]] = {
    "default": ({}, []),
    "all-on": ({}, [ALL_ON_VALUES]),
    "hpa": ({"worker.autoscaling.hpa.enabled": True, "migrations.mode": "none"}, []),
    "kind-values": ({}, [REPO_ROOT / "deploy" / "kind" / "values.yaml"]),
    # The safe defaults turned off (authentication, NetworkPolicies) and the test judges on.
    "unsafe-opt-outs": (
        {
            "providerApi.authToken.enabled": False,
            "networkPolicy.enabled": False,
            "enabledProviders": ["offline", "mock", "simulated"],
            "worker.defaultProvider": "mock",
        },
        [],
    ),
}


@pytest.fixture(scope="module")
def crds_ready(cluster: ClusterEnv) -> None:
    chart_crds = [
        o for o in render(values_files=[ALL_ON_VALUES]) if o["kind"] == "CustomResourceDefinition"
    ]
    ensure_crds(cluster, [*chart_crds, *minimal_third_party_crds()])


def _check(cluster: ClusterEnv, objects: list[Obj], namespace: str) -> None:
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    lines = server_dry_run(cluster, rest, namespace)
    assert len(lines) == len(rest), lines
    assert all(line.endswith("(server dry run)") for line in lines), lines


@pytest.mark.usefixtures("crds_ready")
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_object_is_accepted(cluster: ClusterEnv, namespace: str, case: str) -> None:
    values, files = CASES[case]
    _check(cluster, render(values, files, namespace=namespace), namespace)


@pytest.mark.usefixtures("crds_ready")
def test_namespaced_operator_is_accepted(cluster: ClusterEnv, namespace: str) -> None:
    objects = render({"operator.watchNamespaces": [namespace]}, namespace=namespace)
    assert {"Role", "RoleBinding"} <= {o["kind"] for o in objects}
    _check(cluster, objects, namespace)


@pytest.mark.usefixtures("crds_ready")
def test_kind_profile_dependencies_are_accepted(cluster: ClusterEnv, namespace: str) -> None:
    docs = [
        d
        for d in yaml.safe_load_all(
            (REPO_ROOT / "deploy" / "kind" / "dependencies.yaml").read_text()
        )
        if d and d["kind"] != "Namespace"
    ]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    _check(cluster, docs, namespace)


@pytest.mark.usefixtures("crds_ready")
def test_the_dry_run_refuses_a_wrong_field(cluster: ClusterEnv, namespace: str) -> None:
    """The check above can fail: a misplaced field in a ServiceMonitor is refused."""
    objects = render(values_files=[ALL_ON_VALUES], namespace=namespace)
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(KubectlError, match=r'unknown field "spec.endpoints\[0\].intervall"'):
        server_dry_run(cluster, [monitor], namespace)
    (scaled,) = [o for o in objects if o["kind"] == "ScaledObject"]
    scaled["spec"]["triggers"][0]["metadata"]["lagCount"] = 32
    with pytest.raises(KubectlError, match=r"lagCount"):
        server_dry_run(cluster, [scaled], namespace)
