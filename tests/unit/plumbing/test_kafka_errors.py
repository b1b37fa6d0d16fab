"""A producer out of step with the broker is replaced (cj_plumbing.kafka_errors), in the
workers' result publisher and the operator's event publisher.

The fault suite found it on the real broker (a worker wedged with OutOfOrderSequenceNumber
after a Kafka restart); here a fake aiokafka producer raises the same errors on cue.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber, UnknownProducerId

from cj_operator import kafka_io as operator_kafka
from cj_plumbing.kafka_errors import needs_new_producer
from cj_workers import kafka_io as worker_kafka


class FakeProducer:
    """Stands in for AIOKafkaProducer: each instance fails its sends with the errors queued in
    `FakeProducer.failures` (shared, consumed in order) and records what it sent."""

    instances: ClassVar[list[FakeProducer]] = []
    failures: ClassVar[list[Exception]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.started = self.stopped = False
        self.client = self  # what KafkaPublisher asks for metadata when a send fails
        FakeProducer.instances.append(self)

    async def fetch_all_metadata(self) -> None:
        raise KafkaTimeoutError()  # no broker answers: nothing known about the topic

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, **record: Any) -> None:
        assert self.started and not self.stopped, "send on a producer that is not running"
        if FakeProducer.failures:
            raise FakeProducer.failures.pop(0)
        self.sent.append((topic, record))


@pytest.fixture(autouse=True)
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProducer.instances = []
    FakeProducer.failures = []
    monkeypatch.setattr(worker_kafka, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(operator_kafka, "AIOKafkaProducer", FakeProducer)


def test_which_errors_need_a_new_producer() -> None:
    assert needs_new_producer(OutOfOrderSequenceNumber())
    assert needs_new_producer(UnknownProducerId())
    assert not needs_new_producer(KafkaTimeoutError())
    assert not needs_new_producer(ValueError("x"))


async def test_the_worker_publisher_replaces_a_producer_out_of_step() -> None:
    publisher = worker_kafka.KafkaPublisher(
        "127.0.0.1:1", request_timeout_s=1.0, linger_ms=0, client_id="w"
    )
    FakeProducer.failures = [OutOfOrderSequenceNumber()]
    with pytest.raises(worker_kafka.PublishError, match="OutOfOrderSequenceNumber") as err:
        await publisher.publish("t", b"k", b"v")
    assert not err.value.topic_missing and not err.value.too_large
    first = FakeProducer.instances[0]
    assert first.stopped, "the producer out of step is stopped"
    await publisher.publish("t", b"k", b"v")  # the retry goes through a new producer
    assert len(FakeProducer.instances) == 2
    assert FakeProducer.instances[1].sent == [("t", {"value": b"v", "key": b"k"})]
    await publisher.close()


async def test_the_worker_publisher_keeps_its_producer_on_other_errors() -> None:
    publisher = worker_kafka.KafkaPublisher(
        "127.0.0.1:1", request_timeout_s=1.0, linger_ms=0, client_id="w"
    )
    FakeProducer.failures = [KafkaTimeoutError()]
    with pytest.raises(worker_kafka.PublishError):
        await publisher.publish("t", b"k", b"v")
    await publisher.publish("t", b"k", b"v")
    assert len(FakeProducer.instances) == 1 and not FakeProducer.instances[0].stopped
    await publisher.close()


async def test_the_operator_publisher_replaces_a_producer_out_of_step() -> None:
    publisher = operator_kafka.EventPublisher("127.0.0.1:1", "cj-operator-test")
    await publisher.start()
    record = ConsumerRecord("callbacks", 0, 7, 0, 0, b"k", b"not json", None, 1, 8, [])
    FakeProducer.failures = [UnknownProducerId()]
    with pytest.raises(UnknownProducerId):
        await publisher.dead_letter("dlq", record, "malformed")
    assert FakeProducer.instances[0].stopped, "the producer out of step is stopped"
    await publisher.dead_letter("dlq", record, "malformed")  # the retry: a new producer
    assert len(FakeProducer.instances) == 2
    [(topic, sent)] = FakeProducer.instances[1].sent
    assert (topic, sent["value"], sent["key"]) == ("dlq", b"not json", b"k")
    await publisher.stop()
    assert FakeProducer.instances[1].stopped
