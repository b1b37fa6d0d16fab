"""cjctl on the real kube-apiserver: submit creates ConfigMaps and a CJBatch; clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from typer.testing import CliRunner

from cj_operator.cli.main import app
from cj_operator.essays_source import parse_jsonl
from cj_operator.spec import API_GROUP, API_VERSION, PLURAL, CJBatchSpec
from tests.support.devcluster import ClusterEnv

runner = CliRunner()


def _essays_csv(tmp_path: Path, n: int, words: int = 40) -> Path:
    lines = ["id,text,cohort"]
    lines += [f'e{i:03d},"{"lorem ipsum " * words}essay {i}",c{i % 3}' for i in range(n)]
    path = tmp_path / "essays.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _prompt(tmp_path: Path) -> Path:
    path = tmp_path / "prompt.txt"
    path.write_text("Should schools start later in the morning?\n", encoding="utf-8")
    return path


@pytest.mark.usefixtures("cjbatch_crd")
def test_submit_splits_essays_into_owned_config_maps(
    cluster: ClusterEnv, k8s_api: k8s_client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    # ~1,000 essays of ~2.4 kB: more than one ConfigMap's budget.
    essays = _essays_csv(tmp_path, 1000, words=200)
    result = runner.invoke(
        app,
        [
            "submit",
            str(essays),
            "--name",
            "big",
            "--prompt-file",
            str(_prompt(tmp_path)),
            "--judge",
            "anthropic:claude-sonnet-4-5",
            "--per-essay",
            "6",
            "--max-cost",
            "2.5",
            "-n",
            namespace,
            "--kubeconfig",
            cluster.kubeconfig,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1000 essays" in result.output

    custom = k8s_client.CustomObjectsApi(k8s_api)
    batch: Any = custom.get_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "big"
    )
    spec = CJBatchSpec.model_validate(batch["spec"])
    assert spec.judge.provider == "anthropic"
    assert spec.judge.model == "claude-sonnet-4-5"
    assert spec.comparisons.target_per_essay == 6
    assert spec.limits.max_cost_usd == 2.5
    assert spec.assignment.prompt == "Should schools start later in the morning?"
    assert spec.essays_from is not None
    assert len(spec.essays_from) >= 3

    core = k8s_client.CoreV1Api(k8s_api)
    read_back = []
    for source in spec.essays_from:
        cm: Any = core.read_namespaced_config_map(source.config_map, namespace)
        owners = cm.metadata.owner_references
        assert [(o.kind, o.name, o.uid) for o in owners] == [
            ("CJBatch", "big", batch["metadata"]["uid"])
        ]
        assert source.key is not None
        read_back += parse_jsonl(cm.data[source.key], source.key)
    assert [e.id for e in read_back] == [f"e{i:03d}" for i in range(1000)]
    assert read_back[4].metadata == {"cohort": "c1"}

    listed = runner.invoke(app, ["list", "-n", namespace, "--kubeconfig", cluster.kubeconfig])
    assert listed.exit_code == 0, listed.output
    assert "big" in listed.output


@pytest.mark.usefixtures("cjbatch_crd")
def test_submit_refuses_bad_input_before_touching_the_cluster(
    cluster: ClusterEnv, k8s_api: k8s_client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    dup = tmp_path / "dup.csv"
    dup.write_text("id,text\na,one\na,two\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "submit",
            str(dup),
            "--name",
            "dup",
            "--prompt-file",
            str(_prompt(tmp_path)),
            "-n",
            namespace,
            "--kubeconfig",
            cluster.kubeconfig,
        ],
    )
    assert result.exit_code == 1
    assert "essay id 'a' appears more than once" in result.output
    cms: Any = k8s_client.CoreV1Api(k8s_api).list_namespaced_config_map(namespace)
    assert [cm.metadata.name for cm in cms.items if cm.metadata.name.startswith("dup")] == []


@pytest.mark.usefixtures("cjbatch_crd")
def test_existing_batch_and_missing_batch_errors(
    cluster: ClusterEnv, namespace: str, tmp_path: Path
) -> None:
    args = [
        "submit",
        str(_essays_csv(tmp_path, 3)),
        "--name",
        "twice",
        "--prompt-file",
        str(_prompt(tmp_path)),
        "-n",
        namespace,
        "--kubeconfig",
        cluster.kubeconfig,
    ]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "409" in again.output
    assert "already exists" in again.output

    missing = runner.invoke(
        app, ["results", "nope", "-n", namespace, "--kubeconfig", cluster.kubeconfig]
    )
    assert missing.exit_code == 1
    assert f"cjbatch 'nope' not found in namespace '{namespace}'" in missing.output

    not_ready = runner.invoke(
        app, ["results", "twice", "-n", namespace, "--kubeconfig", cluster.kubeconfig]
    )
    assert not_ready.exit_code == 1
    assert "no results yet: cjbatch twice" in not_ready.output


def test_unreachable_cluster_is_named(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n"
        "  context: {cluster: c, user: u}\ncurrent-context: c\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["list", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1
    assert "cannot reach the Kubernetes API at https://127.0.0.1:1" in result.output
