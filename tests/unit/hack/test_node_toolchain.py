"""The node's Kubernetes binaries are the API server's release: the two wrapper modules agree."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.devcluster import REPO_ROOT

GOMOD = REPO_ROOT / "hack" / "gomod"


def pins(go_mod: Path) -> dict[str, str]:
    """Module path -> version, from require and replace lines (replace wins)."""
    text = go_mod.read_text()
    found = dict(re.findall(r"^\s+(\S+) (v\S+)(?: // indirect)?$", text, re.MULTILINE))
    found.update(re.findall(r"^\s+(\S+) => \S+ (v\S+)$", text, re.MULTILINE))
    return found


def test_kubelet_and_co_build_from_the_api_servers_kubernetes_release() -> None:
    control_plane = pins(GOMOD / "k8s" / "go.mod")
    node = pins(GOMOD / "k8s-node" / "go.mod")
    assert node["k8s.io/kubernetes"] == control_plane["k8s.io/kubernetes"]
    staging = {m for m in control_plane if m.startswith("k8s.io/") and m != "k8s.io/kubernetes"}
    assert len(staging) > 20
    differ = {
        m: (control_plane[m], node.get(m)) for m in staging if node.get(m) != control_plane[m]
    }
    assert differ == {}, differ


def test_the_node_module_builds_the_node_and_the_missing_control_plane_parts() -> None:
    tools = re.search(r"^tool \((.*?)^\)", (GOMOD / "k8s-node" / "go.mod").read_text(), re.S | re.M)
    assert tools is not None
    assert set(tools[1].split()) == {
        f"k8s.io/kubernetes/cmd/{name}"
        for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager")
    }
