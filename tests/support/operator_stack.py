"""Fixtures for tests of the operator process on the real cluster: a provider API and one mock
worker per module, and an operator per test (its own namespace, database and topics) using it.

Import them into a conftest.py or test module that needs them (pytest finds fixtures by
name): `from tests.support.operator_stack import callback_topic, operator, operator_env,
provider`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, delete_redis_keys, unique_name
from tests.support.kafka import create_topic, delete_topics
from tests.support.stack import Stack, StackConfig

__all__ = ["callback_topic", "operator", "operator_env", "provider"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def callback_topic(cluster: ClusterEnv) -> AsyncIterator[str]:
    """One callback topic for the module, deleted after the provider side stopped.

    Shared on purpose: a comparison still running when its test ends publishes later, and the
    worker keeps retrying a publish to a deleted topic; each operator ignores the others'
    callbacks (unknown correlation ids).
    """
    name = f"{unique_name('test.')}.callbacks"
    await create_topic(cluster.kafka_bootstrap_servers, name, partitions=2)
    try:
        yield name
    finally:
        await delete_topics(cluster.kafka_bootstrap_servers, [name])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def provider(
    cluster: ClusterEnv, callback_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The provider API and one mock worker for the whole module (no operator)."""
    config = StackConfig(
        cluster=cluster,
        callback_topic=callback_topic,
        redis_prefix=unique_name("t:op:") + ":",
        group=unique_name("t-op-"),
        workers=1,
        operator=False,
        create_topics=False,
        callback_topic_pattern=r"^test\..+",
        worker_env={
            "CJ_WORKER_CONCURRENCY": "32",
            "CJ_WORKER_DEFAULT_PROVIDER": "mock",
            # Slow mock answers still running at the end are not worth waiting for.
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
    """The operator alone, for this test's namespace, database and topics, using the module's
    provider API (stopped afterwards; its exit code must be clean)."""
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
        operator_env={
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.3",
            "BATCH_MONITOR_INTERVAL_MINUTES": "0.05",
            **operator_env,
        },
    )
    stack = Stack(config, tmp_path).start()
    yield stack
    assert stack.operator is not None
    code = stack.operator.stop()
    assert code in (0, -15, None), f"operator exit code {code}:\n{stack.logs()}"
