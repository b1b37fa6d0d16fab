"""Session-wide fixtures: the local cluster, and per-test isolation on each of its services.

A test under tests/integration/, tests/e2e/ or tests/faults/ is marked `integration` and gets
the real services of `hack/devcluster`: brought up once per session, or reused when already
running (then left running). Each test has its own Kubernetes namespace, PostgreSQL database,
Kafka topic names and Redis key prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tests.support import devcluster
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, delete_redis_keys, unique_name
from tests.support.kube import install_cjbatch_crd

BAD_INPUT_SUITE = "/bad_input/"
"""Tests under tests/unit/bad_input and tests/integration/bad_input: the bad-input suite, whose
runtime the terminal summary prints (docs/security.md)."""

_suite: dict[str, float] = {"tests": 0, "seconds": 0.0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if BAD_INPUT_SUITE in report.nodeid:
        _suite["seconds"] += report.duration
        _suite["tests"] += report.when == "call"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _suite["tests"]:
        terminalreporter.write_line(
            f"bad-input suite: {int(_suite['tests'])} tests in {_suite['seconds']:.1f} s "
            "(setup, call and teardown)"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).as_posix()
        if any(f"tests/{part}/" in path for part in ("integration", "e2e", "faults")):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterEnv]:
    """The running local cluster (started here if it was not running)."""
    started_here = False
    if not devcluster.is_running():
        devcluster.up()
        started_here = True
    yield devcluster.read_env()
    if started_here and not devcluster.keep_running():
        devcluster.down()


@pytest.fixture(scope="session")
def cjbatch_crd(cluster: ClusterEnv) -> str:
    """The CJBatch CRD, installed once per session and left installed (it is cluster-wide)."""
    return install_cjbatch_crd(cluster)


@pytest.fixture(scope="session")
def k8s_api(cluster: ClusterEnv) -> k8s_client.ApiClient:
    """A kubernetes client configured from the cluster's kubeconfig."""
    return k8s_config.new_client_from_config(config_file=cluster.kubeconfig)


@pytest.fixture
def namespace(k8s_api: k8s_client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards.

    Without a controller manager a deleted namespace stays Terminating; its name is never reused.
    """
    name = unique_name("t-")
    core = k8s_client.CoreV1Api(k8s_api)
    core.create_namespace(k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _libpq_url(database_url: str, database: str) -> str:
    base = database_url.replace("postgresql+asyncpg://", "postgresql://")
    return base.rsplit("/", 1)[0] + "/" + database


@pytest_asyncio.fixture
async def database_url(cluster: ClusterEnv) -> AsyncIterator[str]:
    """SQLAlchemy URL (postgresql+asyncpg) of a fresh database for one test, dropped afterwards."""
    name = unique_name("t_")
    admin = await asyncpg.connect(_libpq_url(cluster.database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield cluster.database_url.rsplit("/", 1)[0] + "/" + name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def redis_prefix(cluster: ClusterEnv) -> AsyncIterator[str]:
    """A Redis key prefix for one test; its keys are deleted afterwards."""
    prefix = unique_name("t:") + ":"
    yield prefix
    await delete_redis_keys(cluster, prefix)


@pytest_asyncio.fixture
async def kafka_topic(cluster: ClusterEnv) -> AsyncIterator[TopicFactory]:
    """Create uniquely named topics for one test: `await kafka_topic("callbacks", partitions=3)`.

    The topics are deleted afterwards. The broker does not auto-create topics.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_servers)
    await admin.start()
    created: list[str] = []

    async def create(suffix: str = "topic", partitions: int = 1) -> str:
        name = f"{unique_name('test.')}.{suffix}"
        await admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()
