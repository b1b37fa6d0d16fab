"""Bad-input suite, hostile events on the callback topic: the operator's consumer on real Kafka
and PostgreSQL.

One consumer run reads every case in order, each hostile event followed by a normal result for
another open pair. Each hostile event ends in the dead-letter topic with a reason naming what is
wrong, or is counted as a duplicate or unknown; the normal result after it is recorded; and the
batch's counters hold exactly the normal results (nothing lost, nothing counted twice). The
cases the older consumer tests send (plain garbage, a bare `{"event_type": ...}`, response time
3e9, NUL justification, 201-character model, forged essay ids) are not repeated here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import select

from cj_operator.accounting import Outcome
from cj_operator.db.callbacks import PostgresCallbackStore
from cj_operator.db.models import Batch, ComparisonPair, PairStatus
from cj_operator.db.session import Database
from cj_operator.kafka_io import DEAD_LETTER_MAX_VALUE_BYTES
from cj_operator.metrics import OperatorMetrics
from common_core import EssayComparisonWinner, LLMComparisonResultV1, metadata_keys
from tests.integration.bad_input.resources import temporary_database
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
from tests.support.isolation import unique_name
from tests.support.kafka import Record, collect_records
from tests.support.polling import wait_for

BROKER_MESSAGE_LIMIT = 1048588
"""The broker's default `message.max.bytes` (a record batch, headers included)."""


@dataclass(frozen=True)
class Target:
    """What a case may aim at: an open pair of the stored batch."""

    cid: UUID
    pair_id: int
    batch_uid: str
    echo: dict[str, Any]
    """The identity its request carried, which an honest worker echoes."""


def _doc(result: LLMComparisonResultV1) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(envelope(result))
    return loaded


def _raw(result: LLMComparisonResultV1, **fields: Any) -> bytes:
    """`result`'s envelope with `fields` of its data replaced by raw JSON values."""
    doc = _doc(result)
    doc["data"].update(fields)
    return json.dumps(doc).encode()


def _without_data(t: Target) -> bytes:
    doc = _doc(success(t.cid))
    del doc["data"]
    return json.dumps(doc).encode()


def _both_shapes(t: Target) -> bytes:
    doc = _doc(success(t.cid))
    doc["data"]["error_detail"] = _doc(failure(t.cid))["data"]["error_detail"]
    return json.dumps(doc).encode()


def _unknown_code(t: Target) -> bytes:
    doc = _doc(failure(t.cid))
    doc["data"]["error_detail"]["error_code"] = "LLM_EXPLODED"
    return json.dumps(doc).encode()


def _nan_cost(t: Target) -> bytes:
    # json.dumps writes NaN as the bare token NaN, which is not JSON.
    return _raw(success(t.cid), cost_estimate=float("nan"))


def _oversized(_: Target) -> bytes:
    # Just under what the broker takes: its dead-letter copy plus headers is over the limit.
    return b"x" * (BROKER_MESSAGE_LIMIT - 200)


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[Target], list[bytes | None]]
    """The values to produce; the last is the hostile one (earlier ones set the stage)."""
    reason: str | None = None
    """Dead-lettered with a reason containing this; None: counted as `outcome`."""
    outcome: Outcome | None = None


def one(make: Callable[[Target], bytes | None]) -> Callable[[Target], list[bytes | None]]:
    return lambda t: [make(t)]


CASES: list[Hostile] = [
    # Not an envelope at all.
    Hostile("json array", one(lambda t: b"[1, 2, 3]"), "Input should be an object"),
    Hostile("json string", one(lambda t: b'"essay_a"'), "Input should be an object"),
    Hostile("json null", one(lambda t: b"null"), "Input should be an object"),
    Hostile("tombstone", one(lambda t: None), "empty event value (tombstone)"),
    Hostile("not utf-8", one(lambda t: b"\xff\xfe{\x00}"), "Invalid JSON"),
    Hostile(
        "truncated envelope",
        one(lambda t: envelope(success(t.cid))[:150]),
        "EOF while parsing",
    ),
    Hostile("oversized", one(_oversized), "Invalid JSON"),
    # An envelope whose data is not a result.
    Hostile("envelope without data", one(_without_data), "first at data: Field required"),
    Hostile(
        "data of another event",
        one(lambda t: _raw(success(t.cid), request_id=None, winner=None, provider=None)),
        "first at data.request_id",
    ),
    Hostile(
        "correlation id not a uuid",
        one(lambda t: _raw(success(t.cid), correlation_id="pair-7")),
        "first at data.correlation_id",
    ),
    # Values out of their range.
    Hostile(
        "winner essay_c",
        one(lambda t: _raw(success(t.cid), winner="essay_c")),
        "first at data.winner: Input should be 'essay_a' or 'essay_b'",
    ),
    Hostile(
        "confidence 7",
        one(lambda t: _raw(success(t.cid), confidence=7)),
        "first at data.confidence: Input should be less than or equal to 5",
    ),
    Hostile(
        "negative tokens",
        one(lambda t: _raw(success(t.cid), token_usage={"prompt_tokens": -5})),
        "first at data.token_usage.prompt_tokens: Input should be greater than or equal to 0",
    ),
    Hostile(
        "tokens of 2^31",
        one(lambda t: _raw(success(t.cid), token_usage={"total_tokens": 2**31})),
        "data.token_usage.total_tokens: Input should be less than or equal to 2147483647",
    ),
    Hostile("NaN cost", one(_nan_cost), "first at data.cost_estimate: Input should be a finite"),
    Hostile(
        "cost of a million",
        one(lambda t: _raw(success(t.cid), cost_estimate=1e6)),
        "first at data.cost_estimate: Input should be less than 1000000",
    ),
    Hostile(
        "escape in model",
        one(lambda t: _raw(success(t.cid), model="mock\x1b[31m")),
        "first at data.model: Value error, control character '\\x1b'",
    ),
    Hostile(
        "65-character trace id",
        one(lambda t: _raw(success(t.cid), trace_id="f" * 65)),
        "first at data.trace_id: Value should have at most 64 items",
    ),
    Hostile("unknown error code", one(_unknown_code), "first at data.error_detail.error_code"),
    Hostile(
        "naive timestamp",
        one(lambda t: _raw(success(t.cid), requested_at="2026-01-02T03:04:05")),
        "first at data.requested_at: Input should have timezone info",
    ),
    Hostile("success and error", one(_both_shapes), "not both"),
    # Valid results that lie about their pair.
    Hostile(
        "forged batch id",
        one(lambda t: envelope(success(t.cid, batch_id="another-batch"))),
        "forged: request_metadata.batch_id is 'another-batch'",
    ),
    Hostile(
        "forged pair id",
        one(lambda t: envelope(success(t.cid, batch_id=t.batch_uid, pair_id=10**9))),
        "forged: request_metadata.pair_id is 1000000000",
    ),
    # Counted, not dead-lettered.
    Hostile(
        "unknown correlation id naming a real batch",
        one(lambda t: envelope(success(uuid4(), batch_id=t.batch_uid))),
        outcome=Outcome.UNKNOWN,
    ),
    Hostile(
        "duplicate with the other verdict",
        lambda t: [
            envelope(success(t.cid, EssayComparisonWinner.ESSAY_A, **t.echo)),
            envelope(success(t.cid, EssayComparisonWinner.ESSAY_B, **t.echo)),
        ],
        outcome=Outcome.DUPLICATE,
    ),
    Hostile(
        "error replayed after a success",
        lambda t: [envelope(success(t.cid, **t.echo)), envelope(failure(t.cid))],
        outcome=Outcome.DUPLICATE,
    ),
]
"""The hostile events, in the order they are produced."""

SETTLED_BY_CASE = {c.name for c in CASES if c.outcome is Outcome.DUPLICATE}
"""Cases whose target pair is answered by a normal result first (the hostile one repeats it)."""


@dataclass
class Placed:
    case: Hostile
    target: Target
    offset: int
    """Offset of the hostile record on partition 0."""
    normal: UUID
    """The open pair answered by the normal result produced right after it."""


@dataclass
class ConsumerRun:
    placed: dict[str, Placed]
    dead: dict[int, Record]
    """Dead letters by their source offset."""
    metrics: OperatorMetrics
    batch: Batch
    pairs: dict[UUID, ComparisonPair]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def run(cluster: ClusterEnv) -> AsyncIterator[ConsumerRun]:
    """Every case produced in order, consumed by one running consumer until all offsets are
    committed; then what it recorded and dead-lettered."""
    async with temporary_database(cluster) as url:
        db = await migrated(url)
        try:
            async for consumer_run in _consume_every_case(cluster, db):
                yield consumer_run
        finally:
            await db.dispose()


async def _consume_every_case(cluster: ClusterEnv, db: Database) -> AsyncIterator[ConsumerRun]:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_servers)
    await admin.start()
    topic, dlq = f"{unique_name('test.')}.callbacks", f"{unique_name('test.')}.dlq"
    await admin.create_topics([NewTopic(topic, 1, 1), NewTopic(dlq, 1, 1)])
    try:
        stored = await stored_batch(db, n_essays=30, pairs=2 * len(CASES))
        ids = {cid: int(stored.echo(cid)[metadata_keys.PAIR_ID]) for cid in stored.correlation_ids}
        cids = iter(stored.correlation_ids)
        values: list[bytes | None] = []
        placed: dict[str, Placed] = {}
        for case in CASES:
            cid = next(cids)
            target = Target(cid, ids[cid], stored.uid, stored.echo(cid))
            built = case.build(target)
            values += built
            normal = next(cids)
            placed[case.name] = Placed(case, target, len(values) - 1, normal)
            values.append(envelope(success(normal, **stored.echo(normal))))
        await produce(cluster, topic, values, max_request_size=2 * BROKER_MESSAGE_LIMIT)

        group = unique_name("cj-operator-test-")
        async with running_consumer(cluster, topic, dlq, group, PostgresCallbackStore(db)) as (
            _consumer,
            metrics,
            _,
        ):

            async def all_recorded() -> bool:
                async with db.sessions() as session:
                    open_normals = (
                        await session.execute(
                            select(ComparisonPair.id).where(
                                ComparisonPair.correlation_id.in_(
                                    [p.normal for p in placed.values()]
                                ),
                                ComparisonPair.status != PairStatus.SUCCEEDED,
                            )
                        )
                    ).all()
                return not open_normals

            await wait_for(all_recorded, 60, "every normal result recorded")

            async def all_counted() -> bool:
                # The consumer counts a poll's outcomes after its database and offset commits,
                # so "recorded" can be seen a moment before the counters move (under load).
                counted = metrics.registry.get_sample_value
                return sum(
                    counted("cj_operator_callbacks_total", {"outcome": o.value}) or 0.0
                    for o in Outcome
                ) >= len(values)

            await wait_for(all_counted, 60, "every record counted")
        expected_dead = sum(1 for c in CASES if c.reason is not None)
        dead = await collect_records(
            cluster.kafka_bootstrap_servers,
            dlq,
            expected_dead,
            within=20,
            settle=1.0,
            fetch_bytes=2 * BROKER_MESSAGE_LIMIT,
        )
        async with db.sessions() as session:
            pairs = {
                p.correlation_id: p
                for p in (
                    await session.execute(
                        select(ComparisonPair).where(ComparisonPair.batch_uid == stored.uid)
                    )
                ).scalars()
            }
        yield ConsumerRun(
            placed=placed,
            dead={int(dict(r.headers)["cj-dlq-source-offset"]): r for r in dead},
            metrics=metrics,
            batch=await batch_row(db, stored.uid),
            pairs=pairs,
        )
    finally:
        await admin.delete_topics([topic, dlq])
        await admin.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_a_hostile_event_is_dead_lettered_or_counted_and_the_next_one_recorded(
    run: ConsumerRun, case: Hostile
) -> None:
    placed = run.placed[case.name]
    after = run.pairs[placed.normal]
    assert after.status is PairStatus.SUCCEEDED, f"the result after {case.name!r} was lost"
    target = run.pairs[placed.target.cid]
    if case.reason is not None:
        record = run.dead.get(placed.offset)
        assert record is not None, f"{case.name!r} not dead-lettered: {sorted(run.dead)}"
        reason = dict(record.headers)["cj-dlq-reason"].decode()
        assert case.reason in reason, reason
        assert target.status is PairStatus.PENDING, "a dead-lettered event changed its pair"
    else:
        assert placed.offset not in run.dead, f"{case.name!r} dead-lettered"
    if case.name in SETTLED_BY_CASE:
        # The first answer stands: the replay changed neither verdict nor status.
        assert target.status is PairStatus.SUCCEEDED
        assert target.winner == EssayComparisonWinner.ESSAY_A.value
        assert target.error_code is None


def test_an_oversized_dead_letter_is_cut_and_says_how_big_it_was(run: ConsumerRun) -> None:
    """Regression: a record just under the broker's limit could not be copied with the
    dead-letter headers added (MessageSizeTooLargeError); the consumer retried the poll
    forever and the results after it were never recorded."""
    record = run.dead[run.placed["oversized"].offset]
    headers = dict(record.headers)
    assert int(headers["cj-dlq-original-bytes"]) == BROKER_MESSAGE_LIMIT - 200
    assert record.value == b"x" * DEAD_LETTER_MAX_VALUE_BYTES


def _count(metrics: OperatorMetrics, outcome: Outcome) -> float:
    value = metrics.registry.get_sample_value(
        "cj_operator_callbacks_total", {"outcome": outcome.value}
    )
    return 0.0 if value is None else value


async def test_the_counters_hold_exactly_the_normal_results(run: ConsumerRun) -> None:
    normals = len(CASES) + len(SETTLED_BY_CASE)  # the stage-setting first answers count too
    dead = [c for c in CASES if c.reason is not None]
    forged = [c for c in dead if c.reason and c.reason.startswith("forged")]
    assert (run.batch.submitted, run.batch.completed, run.batch.failed) == (
        2 * len(CASES),
        normals,
        0,
    )
    assert run.batch.cost_usd == pytest.approx(0.001 * normals)
    assert _count(run.metrics, Outcome.SUCCESS) == normals
    assert _count(run.metrics, Outcome.MALFORMED) == len(dead) - len(forged)
    assert _count(run.metrics, Outcome.FORGED) == len(forged)
    assert _count(run.metrics, Outcome.DUPLICATE) == len(SETTLED_BY_CASE)
    assert _count(run.metrics, Outcome.UNKNOWN) == 1
    assert _count(run.metrics, Outcome.FAILURE) == 0
    assert run.metrics.registry.get_sample_value("cj_operator_dead_letters_total") == len(dead)
    assert sorted(run.dead) == sorted(run.placed[c.name].offset for c in dead)
