"""Helpers for operator integration tests: a migrated database holding a started batch, and the
callback consumer running against real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.orm import aliased

from cj_operator.db import batches, rounds
from cj_operator.db.models import Batch, ComparisonPair, Essay
from cj_operator.db.session import Database
from cj_operator.kafka_io import CallbackConsumer, CallbackStore, EventPublisher
from cj_operator.limits import resolve_limits
from cj_operator.metrics import OperatorMetrics
from cj_operator.migrate import upgrade
from cj_operator.spec import CJBatchSpec
from common_core import EventEnvelope, LLMComparisonResultV1, metadata_keys
from tests.support.devcluster import ClusterEnv


@dataclass(frozen=True)
class StoredBatch:
    uid: str
    correlation_ids: list[uuid.UUID]
    identities: dict[uuid.UUID, dict[str, Any]]
    """Per correlation id, the identity keys its request carried (what a worker echoes)."""

    def echo(self, cid: uuid.UUID) -> dict[str, Any]:
        """The request metadata identity a worker echoes for `cid` (keyword arguments of
        `tests.support.factories.success`)."""
        return dict(self.identities[cid])


async def migrated(database_url: str) -> Database:
    """The schema at head on `database_url`, and a Database on it."""
    await upgrade(database_url)
    return Database(database_url, pool_size=10)


async def stored_batch(db: Database, n_essays: int = 8, pairs: int = 4) -> StoredBatch:
    """A batch with `n_essays` essays and one round of `pairs` PENDING comparisons."""
    uid = str(uuid.uuid4())
    spec = CJBatchSpec.model_validate(
        {
            "essays": [{"id": f"e{i}", "text": f"Essay {i}."} for i in range(n_essays)],
            "assignment": {"prompt": "Write."},
            "comparisons": {"targetPerEssay": 50},
        }
    )
    limits = resolve_limits(spec, 3600.0, 0.8)
    await batches.register_batch(
        db, uid=uid, namespace="ns", name=f"b-{uid[:8]}", generation=1, spec=spec, limits=limits
    )
    assert spec.essays is not None
    await batches.store_essays(db, uid, spec.essays)
    chosen = [(i % n_essays, (i + 1 + i // n_essays) % n_essays) for i in range(pairs)]
    chosen = [(a, b if b != a else (a + 1) % n_essays) for a, b in chosen]
    async with db.sessions.begin() as session:
        batch = await rounds.lock_batch(session, uid)
        assert batch is not None
        await rounds.insert_round(session, batch, 1, chosen)
    essay_a, essay_b = aliased(Essay), aliased(Essay)
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(
                    ComparisonPair.correlation_id,
                    ComparisonPair.id,
                    essay_a.essay_id,
                    essay_b.essay_id,
                )
                .join(
                    essay_a,
                    (essay_a.batch_uid == ComparisonPair.batch_uid)
                    & (essay_a.idx == ComparisonPair.essay_a_idx),
                )
                .join(
                    essay_b,
                    (essay_b.batch_uid == ComparisonPair.batch_uid)
                    & (essay_b.idx == ComparisonPair.essay_b_idx),
                )
                .where(ComparisonPair.batch_uid == uid)
                .order_by(ComparisonPair.id)
            )
        ).all()
    identities = {
        cid: {
            metadata_keys.BATCH_ID: uid,
            metadata_keys.PAIR_ID: pair_id,
            metadata_keys.ESSAY_A_ID: a_id,
            metadata_keys.ESSAY_B_ID: b_id,
        }
        for cid, pair_id, a_id, b_id in rows
    }
    return StoredBatch(uid, [row[0] for row in rows], identities)


async def batch_row(db: Database, uid: str) -> Batch:
    async with db.sessions() as session:
        batch = await session.get(Batch, uid)
        assert batch is not None
        return batch


def envelope(result: LLMComparisonResultV1) -> bytes:
    """The Kafka value a worker publishes for `result`."""
    return (
        EventEnvelope[LLMComparisonResultV1](
            event_type="llm_provider.comparison_result",
            source_service="test",
            correlation_id=result.correlation_id,
            data=result,
        )
        .model_dump_json()
        .encode()
    )


@contextlib.asynccontextmanager
async def running_consumer(
    cluster: ClusterEnv, topic: str, dlq: str, group: str, store: CallbackStore
) -> AsyncIterator[tuple[CallbackConsumer, OperatorMetrics, list[set[str]]]]:
    """The operator's callback consumer on `topic` (dead letters to `dlq`), running until the
    block ends; yields it, its metrics and the batch uids each recorded poll touched."""
    metrics = OperatorMetrics()
    publisher = EventPublisher(cluster.kafka_bootstrap_servers, "cj-operator-test")
    await publisher.start()
    touched: list[set[str]] = []
    consumer = CallbackConsumer(
        bootstrap_servers=cluster.kafka_bootstrap_servers,
        topic=topic,
        group_id=group,
        dead_letter_topic=dlq,
        max_records=50,
        poll_timeout_ms=200,
        store=store,
        publisher=publisher,
        metrics=metrics,
        on_recorded=lambda uids, _: touched.append(uids),
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, metrics, touched
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await publisher.stop()


async def produce(
    cluster: ClusterEnv,
    topic: str,
    values: Sequence[bytes | None],
    max_request_size: int = 1048576,
) -> None:
    """Produce `values` in order to `topic` (key b"k", so one partition keeps their order)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.kafka_bootstrap_servers, max_request_size=max_request_size
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=b"k")
    finally:
        await producer.stop()
