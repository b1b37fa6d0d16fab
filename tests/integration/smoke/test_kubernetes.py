"""The Kubernetes API server is real: apply a CRD; create, patch and watch a custom object."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch

from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.cj.huleedu.io"},
    "spec": {
        "group": "smoke.cj.huleedu.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _apply_crd(cluster: ClusterEnv) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(CRD))
    kubectl(
        cluster,
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/widgets.smoke.cj.huleedu.io",
    )


def test_server_reports_pinned_release(cluster: ClusterEnv) -> None:
    version = json.loads(kubectl(cluster, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == "v1.35.4"


def test_schema_validation_is_enforced_by_the_server(cluster: ClusterEnv, namespace: str) -> None:
    _apply_crd(cluster)
    bad = {
        "apiVersion": "smoke.cj.huleedu.io/v1",
        "kind": "Widget",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"size": 0},
    }
    proc = subprocess.run(
        [str(cluster.kubectl), "--kubeconfig", cluster.kubeconfig, "apply", "-f", "-"],
        input=json.dumps(bad),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "spec.size" in proc.stderr and "should be greater than or equal to 1" in proc.stderr


def test_custom_object_create_patch_watch(
    cluster: ClusterEnv, k8s_api: k8s_client.ApiClient, namespace: str
) -> None:
    _apply_crd(cluster)
    widget = {
        "apiVersion": "smoke.cj.huleedu.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3},
    }
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(widget))

    api = k8s_client.CustomObjectsApi(k8s_api)
    events: list[dict[str, Any]] = []
    listening = threading.Event()

    def watch_widgets() -> None:
        w = k8s_watch.Watch()
        listening.set()
        for event in w.stream(
            api.list_namespaced_custom_object,
            "smoke.cj.huleedu.io",
            "v1",
            namespace,
            "widgets",
            timeout_seconds=20,
        ):
            events.append(event)
            if event["type"] == "MODIFIED" and event["object"].get("status", {}).get("phase"):
                w.stop()

    watcher = threading.Thread(target=watch_widgets)
    watcher.start()
    listening.wait(5)

    api.patch_namespaced_custom_object(
        "smoke.cj.huleedu.io", "v1", namespace, "widgets", "w1", {"spec": {"size": 5}}
    )
    api.patch_namespaced_custom_object_status(
        "smoke.cj.huleedu.io", "v1", namespace, "widgets", "w1", {"status": {"phase": "Ready"}}
    )
    watcher.join(30)

    assert not watcher.is_alive()
    assert events[0]["type"] == "ADDED"
    final = events[-1]["object"]
    assert final["spec"]["size"] == 5
    assert final["status"]["phase"] == "Ready"
    got = json.loads(kubectl(cluster, "get", "widget", "w1", "-n", namespace, "-o", "json"))
    assert got["status"]["phase"] == "Ready"


def test_rbac_denies_an_unprivileged_user(cluster: ClusterEnv) -> None:
    proc = subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            cluster.kubeconfig,
            "auth",
            "can-i",
            "list",
            "secrets",
            "--as=nobody",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.strip() == "no"
