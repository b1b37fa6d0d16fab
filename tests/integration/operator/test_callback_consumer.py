"""The callback consumer on real Kafka and PostgreSQL.

It records results idempotently, commits offsets only after the database commit, counts
unknown correlation ids, and dead-letters malformed events without stopping.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from cj_operator.accounting import PollPlan
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.session import Database
from cj_operator.metrics import OperatorMetrics
from common_core import LLMComparisonResultV1, LLMErrorCode
from tests.integration.operator.batches import (
    batch_row,
    envelope,
    migrated,
    produce,
    running_consumer,
    stored_batch,
)
from tests.support.devcluster import ClusterEnv
from tests.support.factories import failure, success
from tests.support.isolation import TopicFactory, unique_name
from tests.support.kafka import collect_records
from tests.support.polling import wait_for


async def _committed(cluster: ClusterEnv, topic: str, group: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=cluster.kafka_bootstrap_servers, group_id=group)
    await probe.start()
    try:
        return await probe.committed(TopicPartition(topic, 0))
    finally:
        await probe.stop()


async def _until_committed(
    cluster: ClusterEnv, topic: str, group: str, offset: int, what: str
) -> None:
    """Wait until the group's committed offset of partition 0 is `offset`."""

    async def committed() -> bool:
        return await _committed(cluster, topic, group) == offset

    await wait_for(committed, 30, what)


def _metric(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await migrated(database_url)
    yield database
    await database.dispose()


async def test_consumer_records_counts_and_dead_letters(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=3)
    a, b, c = stored.correlation_ids
    values = [
        envelope(success(a, **stored.echo(a))),
        b"this is not json",
        envelope(success(a, **stored.echo(a))),  # duplicate
        envelope(failure(b)),
        envelope(success(uuid4())),  # unknown correlation id
        b'{"event_type": "x"}',
        envelope(success(c, **stored.echo(c))),
    ]
    await produce(cluster, topic, values)

    async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
        _,
        metrics,
        touched,
    ):
        await _until_committed(cluster, topic, group, len(values), "committed offsets")
        batch = await batch_row(db, stored.uid)
        assert (batch.submitted, batch.completed, batch.failed) == (3, 2, 1)
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="success") == 2
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="failure") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="duplicate") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="unknown") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="malformed") == 2
        assert _metric(metrics, "cj_operator_dead_letters_total") == 2
        assert any(stored.uid in uids for uids in touched)

        # Keeps going after the malformed ones: a later event is recorded too.
        more = await stored_batch(db, pairs=1)
        (later,) = more.correlation_ids
        await produce(cluster, topic, [envelope(success(later, **more.echo(later)))])

        async def recorded() -> bool:
            return (await batch_row(db, more.uid)).completed == 1

        await wait_for(recorded, 30, "the later callback recorded")

    dead = await collect_records(cluster.kafka_bootstrap_servers, dlq, 2, within=10, settle=1.0)
    assert [r.value for r in dead] == [b"this is not json", b'{"event_type": "x"}']
    headers = dict(dead[0].headers)
    assert headers["cj-dlq-source-topic"] == topic.encode()
    assert headers["cj-dlq-source-offset"] == b"1"
    assert b"validation error" in headers["cj-dlq-reason"]


async def test_offsets_are_committed_only_after_the_database_commit(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=2)
    broken = True
    attempts = 0

    class Flaky:
        async def record(self, results: Sequence[LLMComparisonResultV1]) -> PollPlan:
            nonlocal attempts
            attempts += 1
            if broken:
                raise ConnectionError("database went away")
            return await PostgresCallbackStore(db).record(results)

    await produce(
        cluster, topic, [envelope(success(c, **stored.echo(c))) for c in stored.correlation_ids]
    )
    async with running_consumer(cluster, topic, dlq, group, Flaky()) as (_, metrics, _t):

        async def tried_twice() -> bool:
            return attempts >= 2

        await wait_for(tried_twice, 30, "two failed recording attempts")
        assert await _committed(cluster, topic, group) is None
        assert (await batch_row(db, stored.uid)).completed == 0

        def lag_is(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return _metric(metrics, "cj_operator_callback_consumer_lag") == n

            return check

        # The failed poll was rewound: both events still count as not read.
        await wait_for(lag_is(2), 30, "consumer lag 2 while recording fails")
        broken = False

        await _until_committed(
            cluster, topic, group, 2, "offsets committed once the database is back"
        )
        await wait_for(lag_is(0), 30, "consumer lag 0 once recorded")
    batch = await batch_row(db, stored.uid)
    assert (batch.completed, batch.failed) == (2, 0)


async def test_a_restarted_consumer_does_not_count_again(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=2)
    first, second = stored.correlation_ids
    await produce(cluster, topic, [envelope(success(first, **stored.echo(first)))])

    for value, expected in ((None, 1), (envelope(success(second, **stored.echo(second))), 2)):
        if value is not None:
            await produce(cluster, topic, [value])
        async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
            _,
            metrics,
            _t,
        ):

            async def done(n: int = expected) -> bool:
                return await _committed(cluster, topic, group) == n

            await wait_for(done, 30, f"{expected} offsets committed")
            # Only the new event was processed by this consumer.
            assert _metric(metrics, "cj_operator_callbacks_total", outcome="success") == 1
    batch = await batch_row(db, stored.uid)
    assert batch.completed == 2


def _hostile(result: LLMComparisonResultV1, **fields: object) -> bytes:
    """The envelope of `result` with raw JSON fields a producer could send regardless of
    the contract (the model would refuse to build them)."""
    doc = json.loads(envelope(result))
    doc["data"].update(fields)
    return json.dumps(doc).encode()


async def test_out_of_range_or_unstorable_results_do_not_jam_the_consumer(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    """Regression: a result with response_time_ms 3e9 (valid JSON, too big for the integer
    column), a NUL in the justification or a 201-character model made the consumer retry its
    poll forever; answers that came after them were never counted."""
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=4)
    a, b, c, d = stored.correlation_ids
    values = [
        _hostile(success(a, **stored.echo(a)), response_time_ms=3_000_000_000),
        _hostile(success(b, **stored.echo(b)), justification="fine\x00then not"),
        _hostile(success(c, **stored.echo(c)), model="m" * 201),
        envelope(success(d, **stored.echo(d))),
    ]
    await produce(cluster, topic, values)
    async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
        _,
        metrics,
        _t,
    ):
        await _until_committed(
            cluster, topic, group, len(values), "offsets committed past the hostile events"
        )
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="malformed") == 3
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="success") == 1
    batch = await batch_row(db, stored.uid)
    assert (batch.submitted, batch.completed, batch.failed) == (4, 1, 0)
    dead = await collect_records(cluster.kafka_bootstrap_servers, dlq, 3, within=10, settle=1.0)
    reasons = [dict(r.headers)["cj-dlq-reason"].decode() for r in dead]
    assert "response_time_ms" in reasons[0] and "less than or equal to 2147483647" in reasons[0]
    assert "justification" in reasons[1] and "control character" in reasons[1]
    assert "model" in reasons[2] and "at most 200 characters" in reasons[2]


async def test_a_record_the_database_refuses_is_dead_lettered_and_the_rest_recorded(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    """Second line of defence, for a value the contract lets through but PostgreSQL refuses:
    the poll is recorded record by record; the refused one goes to the dead-letter topic with
    the database's reason, the others count and the offsets are committed."""
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=3)
    poisoned, *healthy = stored.correlation_ids
    real = PostgresCallbackStore(db)

    class ContractGap:
        """The real store, but the poisoned result reaches PostgreSQL out of range."""

        async def record(self, results: Sequence[LLMComparisonResultV1]) -> PollPlan:
            return await real.record(
                [
                    r.model_copy(update={"response_time_ms": 3_000_000_000})
                    if r.correlation_id == poisoned
                    else r
                    for r in results
                ]
            )

    values = [
        envelope(success(poisoned, **stored.echo(poisoned))),
        *(envelope(failure(cid)) for cid in healthy),
    ]
    await produce(cluster, topic, values)
    async with running_consumer(cluster, topic, dlq, group, ContractGap()) as (_, metrics, _t):
        await _until_committed(
            cluster, topic, group, len(values), "offsets committed past the refused record"
        )
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="unrecordable") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="failure") == 2
        assert _metric(metrics, "cj_operator_dead_letters_total") == 1
    batch = await batch_row(db, stored.uid)
    assert (batch.submitted, batch.completed, batch.failed) == (3, 0, 2)
    dead = await collect_records(cluster.kafka_bootstrap_servers, dlq, 1, within=10, settle=1.0)
    assert dead[0].value == values[0]
    reason = dict(dead[0].headers)["cj-dlq-reason"].decode()
    assert reason.startswith("the database refused it:") and "int32" in reason


async def test_a_verdict_naming_another_pair_is_dead_lettered_as_forged(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    """A result that knows an open correlation id but names other essays is not counted."""
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=2)
    target, honest = stored.correlation_ids
    forged = envelope(
        success(target, **{**stored.echo(target), "essay_a_id": "e7", "essay_b_id": "e6"})
    )
    await produce(cluster, topic, [forged, envelope(success(honest, **stored.echo(honest)))])
    async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
        _,
        metrics,
        _t,
    ):
        await _until_committed(
            cluster, topic, group, 2, "offsets committed past the forged verdict"
        )
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="forged") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="success") == 1
    batch = await batch_row(db, stored.uid)
    assert (batch.completed, batch.failed) == (1, 0), "the forged verdict counted"
    dead = await collect_records(cluster.kafka_bootstrap_servers, dlq, 1, within=10, settle=1.0)
    assert dead[0].value == forged
    assert dict(dead[0].headers)["cj-dlq-reason"].startswith(b"forged: request_metadata.essay_a_id")


async def test_a_verdict_that_omits_the_request_metadata_is_dead_lettered_as_forged(
    cluster: ClusterEnv, kafka_topic: TopicFactory, db: Database
) -> None:
    """A forger who knows open correlation ids but leaves the metadata keys out (all of them,
    or only the pair id) is dead-lettered like one who names other essays; an honest verdict
    and a worker's give-up error event that echoes no metadata are recorded."""
    topic = await kafka_topic("callbacks")
    dlq = await kafka_topic("dlq")
    group = unique_name("cj-operator-test-")
    stored = await stored_batch(db, pairs=4)
    bare, no_pair, honest, give_up = stored.correlation_ids
    without_pair = {k: v for k, v in stored.echo(no_pair).items() if k != "pair_id"}
    values = [
        envelope(success(bare)),
        envelope(success(no_pair, **without_pair)),
        envelope(success(honest, **stored.echo(honest))),
        envelope(failure(give_up, LLMErrorCode.INTERNAL_ERROR)),  # echoes {}
    ]
    await produce(cluster, topic, values)
    async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
        _,
        metrics,
        _t,
    ):
        await _until_committed(
            cluster, topic, group, len(values), "offsets committed past the forged verdicts"
        )
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="forged") == 2
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="success") == 1
        assert _metric(metrics, "cj_operator_callbacks_total", outcome="failure") == 1
        assert _metric(metrics, "cj_operator_dead_letters_total") == 2
    batch = await batch_row(db, stored.uid)
    assert (batch.completed, batch.failed) == (1, 1), "a verdict without metadata counted"
    dead = await collect_records(cluster.kafka_bootstrap_servers, dlq, 2, within=10, settle=1.0)
    assert [r.value for r in dead] == values[:2]
    reasons = [dict(r.headers)["cj-dlq-reason"].decode() for r in dead]
    assert reasons[0].startswith("forged: a verdict without request_metadata.batch_id")
    assert reasons[1].startswith("forged: a verdict without request_metadata.pair_id")
