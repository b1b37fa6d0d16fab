"""NOTES.txt as `helm template` renders it: next steps naming the release's own objects, and no
false Secret warnings without a cluster (tests/integration/deploy/test_helm_install.py checks
the warnings against a real API server)."""

from __future__ import annotations

from pathlib import Path

from tests.support.chart import ALL_ON_VALUES, render_notes


def test_without_a_cluster_secrets_are_not_checked_and_nothing_is_called_missing(
    tmp_path: Path,
) -> None:
    # The all-on values name six Secrets (database, Redis, API token, LLM keys, pull secret).
    notes = render_notes(values_files=[ALL_ON_VALUES], workdir=tmp_path)
    assert "WARNING" not in notes
    assert "Secrets: not checked (no cluster to ask while rendering" in notes


def test_next_steps_name_the_release_and_the_batch_namespace(tmp_path: Path) -> None:
    notes = render_notes(release="essays", namespace="cj", workdir=tmp_path / "a")
    assert notes.startswith("cj-operator 0.1.0 is installed: release essays in namespace cj.")
    assert "reconciles CJBatches in every namespace." in notes
    for command in (
        "kubectl -n cj get pods -l app.kubernetes.io/instance=essays",
        "helm test essays -n cj",
        "kubectl -n cj apply -f my-batch.yaml",
        "cjctl submit essays.csv --name my-batch --prompt-file prompt.txt --judge offline -n cj",
        "kubectl -n cj get cjbatches",
        "kubectl -n cj wait --for=condition=Ready cjbatch/my-batch --timeout=2h",
        "cjctl results my-batch -n cj",
        "cjctl report my-batch -n cj -o report.html",
    ):
        assert f"       {command}" in notes, command
    # Watching listed namespaces: batches go in the first of them.
    notes = render_notes(
        {"operator.watchNamespaces": ["team-a", "team-b"]}, namespace="cj", workdir=tmp_path / "b"
    )
    assert "reconciles CJBatches in the namespaces team-a, team-b." in notes
    assert "kubectl -n team-a wait --for=condition=Ready cjbatch/my-batch" in notes
    assert "helm test cj -n cj\n" in notes


def test_grafana_rbac_and_tests_lines_follow_the_values(tmp_path: Path) -> None:
    default = render_notes(workdir=tmp_path / "a")
    assert "--set grafana.dashboard.enabled=true adds the ConfigMap" in default
    assert "cj-cj-operator-cj-batch-editor and -viewer are aggregated" in default
    assert "RBAC: not created" not in default
    assert "no test pod" not in default
    changed = render_notes(
        {
            "grafana.dashboard.enabled": True,
            "grafana.dashboard.namespace": "monitoring",
            "rbac.create": False,
            "tests.enabled": False,
        },
        workdir=tmp_path / "b",
    )
    flat = " ".join(changed.split())
    dashboard = 'dashboard "CJ operator" is the ConfigMap cj-cj-operator-dashboard in namespace'
    assert f"{dashboard} monitoring" in flat
    assert "Bind the ServiceAccount cj-system/cj-cj-operator-operator to the operator's" in flat
    assert "aggregated" not in changed
    assert "(tests.enabled=false: no test pod to run)" in changed
