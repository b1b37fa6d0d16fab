"""The Kafka broker is real: produce and consume with aiokafka, offsets committed by a group."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, unique_name


async def test_produce_then_consume_in_a_group(
    cluster: ClusterEnv, kafka_topic: TopicFactory
) -> None:
    topic = await kafka_topic("smoke", partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 7}".encode())
    finally:
        await producer.stop()

    group = unique_name("g-")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=cluster.kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(seen) < 30:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    seen.extend(r.value for r in records if r.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(30))

    # A second consumer of the same group starts after the committed offsets: nothing left.
    again = AIOKafkaConsumer(
        topic,
        bootstrap_servers=cluster.kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await again.start()
    try:
        leftover = await again.getmany(timeout_ms=2000)
    finally:
        await again.stop()
    assert sum(len(v) for v in leftover.values()) == 0


async def test_broker_does_not_auto_create_topics(cluster: ClusterEnv) -> None:
    name = unique_name("missing.")
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.kafka_bootstrap_servers, request_timeout_ms=3000
    )
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(name, b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_servers)
    await admin.start()
    try:
        assert name not in await admin.list_topics()
    finally:
        await admin.close()
