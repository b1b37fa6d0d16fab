"""Topic creation on the real broker: what the operator's start-up and cj-bootstrap-topics run."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

from cj_plumbing.kafka_admin import ensure_topics, list_topics
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import unique_name
from tests.support.processes import free_port


async def test_creates_the_missing_topics_once(cluster: ClusterEnv) -> None:
    servers = cluster.kafka_bootstrap_servers
    first, second = f"{unique_name('test.')}.a", f"{unique_name('test.')}.b"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        created = await ensure_topics(
            servers, [first, second, first], 2, 1, min_insync_replicas=2, timeout_s=30
        )
        assert created == [first, second]
        described = await admin.describe_topics([first, second])
        assert sorted(len(t["partitions"]) for t in described) == [2, 2]
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, first)])
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert entries["min.insync.replicas"] == "2"
        assert {first, second} <= await list_topics(servers, timeout_s=10)
        # Again, without an overall timeout (the operator's call): nothing left to create.
        assert await ensure_topics(servers, [second, first], 2, 1) == []
    finally:
        await admin.delete_topics([first, second])
        await admin.close()


async def test_a_refused_connection_raises_kafkas_error() -> None:
    with pytest.raises(KafkaConnectionError):
        await ensure_topics(f"127.0.0.1:{free_port()}", ["t"], 1, 1, timeout_s=2)
    with pytest.raises(KafkaConnectionError):
        await list_topics(f"127.0.0.1:{free_port()}", timeout_s=2)
