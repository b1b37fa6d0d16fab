"""cjctl against the real cluster: a provider API and mock worker per module, an operator per
test (its own namespace, database and topics: tests.support.operator_stack), and `cjctl` run
in-process with the cluster's kubeconfig."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from kubernetes import client as k8s_client
from typer.testing import CliRunner, Result

from cj_operator.cli.main import app
from tests.support.cjbatches import Batches
from tests.support.devcluster import ClusterEnv
from tests.support.operator_stack import (  # noqa: F401  (fixtures, found by name)
    callback_topic,
    operator,
    operator_env,
    provider,
)

Cjctl = Callable[..., Result]
"""`cjctl("list", "-o", "json", env={...})`: run cjctl in the test's namespace."""


@pytest.fixture
def cjctl(cluster: ClusterEnv, namespace: str) -> Cjctl:
    """Run cjctl in-process with `-n <namespace> --kubeconfig <cluster's>` appended;
    DATABASE_URL is unset unless `env` sets it."""
    runner = CliRunner()

    def run(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
        argv = [*args, "-n", namespace, "--kubeconfig", cluster.kubeconfig]
        return runner.invoke(app, argv, env={"DATABASE_URL": None, **(env or {})})

    return run


@pytest.fixture
def batches(k8s_api: k8s_client.ApiClient, namespace: str) -> Batches:
    return Batches(k8s_api, namespace)
