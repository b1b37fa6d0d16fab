"""cjctl against the real cluster: a provider API and mock worker per module, an operator per
test (its own namespace, database and topics), and `cjctl` run in-process with the cluster's
kubeconfig."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes import client as k8s_client
from typer.testing import CliRunner, Result

from cj_operator.cli.main import app
from tests.support.cjbatches import Batches
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, delete_redis_keys, unique_name
from tests.support.stack import Stack, StackConfig

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


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def callback_topic(cluster: ClusterEnv) -> AsyncIterator[str]:
    """One callback topic for the module (each test's operator ignores the others' callbacks:
    unknown correlation ids)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_servers)
    await admin.start()
    name = f"{unique_name('test.')}.callbacks"
    await admin.create_topics([NewTopic(name, 2, 1)])
    try:
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def provider(
    cluster: ClusterEnv, callback_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The provider API and one mock worker for the module (no operator)."""
    config = StackConfig(
        cluster=cluster,
        callback_topic=callback_topic,
        redis_prefix=unique_name("t:cli:") + ":",
        group=unique_name("t-cli-"),
        workers=1,
        operator=False,
        create_topics=False,
        callback_topic_pattern=r"^test\..+",
        worker_env={
            "CJ_WORKER_CONCURRENCY": "32",
            "CJ_WORKER_DEFAULT_PROVIDER": "mock",
            "CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS": "2",
        },
    )
    side = Stack(config, tmp_path_factory.mktemp("provider"))
    try:
        yield side.start()
    finally:
        side.stop()
        await delete_redis_keys(cluster, config.redis_prefix)


@pytest.fixture
def operator_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra environment of the operator process (parametrize indirectly to change it)."""
    return dict(getattr(request, "param", {}))


@pytest_asyncio.fixture
async def operator(
    operator_env: dict[str, str],
    cluster: ClusterEnv,
    namespace: str,
    database_url: str,
    provider: Stack,
    callback_topic: str,
    kafka_topic: TopicFactory,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """An operator for this test's namespace and database, using the module's provider API."""
    config = StackConfig(
        cluster=cluster,
        callback_topic=callback_topic,
        completion_topic=await kafka_topic("completed"),
        dead_letter_topic=await kafka_topic("dlq"),
        redis_prefix=provider.config.redis_prefix,
        group=unique_name("cj-operator-"),
        database_url=database_url,
        namespace=namespace,
        workers=0,
        provider_api_url=provider.api_url,
        create_topics=False,
        operator_env={"CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.3", **operator_env},
    )
    stack = Stack(config, tmp_path).start()
    yield stack
    assert stack.operator is not None
    code = stack.operator.stop()
    assert code in (0, -15, None), f"operator exit code {code}:\n{stack.logs()}"
