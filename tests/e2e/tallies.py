"""What the system recorded for one batch, read from outside: the operator's tables
(PostgreSQL) and the events on the callback and completion topics (Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from cj_operator.db.models import Batch, ComparisonPair
from common_core import (
    CJAssessmentCompletedV1,
    EventEnvelope,
    LLMComparisonResultV1,
    metadata_keys,
)
from tests.support.kafka import collect_events


@dataclass(frozen=True)
class DbCounts:
    submitted: int
    completed: int
    failed: int
    pairs_with_winner: int


async def database_counts(database_url: str, uid: str) -> DbCounts:
    """The batch row's counters and the number of pairs holding a winner."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            batch = (await conn.execute(select(Batch).where(Batch.uid == uid))).one()
            winners = (
                await conn.execute(
                    select(func.count())
                    .select_from(ComparisonPair)
                    .where(ComparisonPair.batch_uid == uid, ComparisonPair.winner.is_not(None))
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return DbCounts(batch.submitted, batch.completed, batch.failed, int(winners))


@dataclass(frozen=True)
class CallbackTally:
    distinct_requests: int
    successes: int
    errors: int


async def callback_tally(bootstrap: str, topic: str, uid: str) -> CallbackTally:
    """Distinct callback events (by correlation id) of one batch on the callback topic."""
    seen: dict[str, bool] = {}
    for envelope in await collect_events(bootstrap, topic, EventEnvelope[LLMComparisonResultV1]):
        event = envelope.data
        if event.request_metadata.get(metadata_keys.BATCH_ID) == uid:
            seen[str(event.correlation_id)] = event.is_success
    return CallbackTally(len(seen), sum(seen.values()), sum(not s for s in seen.values()))


async def completion_events(bootstrap: str, topic: str, uid: str) -> list[CJAssessmentCompletedV1]:
    """Completion events of one batch on the completion topic."""
    envelopes = await collect_events(bootstrap, topic, EventEnvelope[CJAssessmentCompletedV1])
    return [e.data for e in envelopes if e.data.batch_id == uid]
