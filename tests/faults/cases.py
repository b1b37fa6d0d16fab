"""The fault cases of issue 12: each runs one batch on a `FaultStack`, injects exactly one fault
at a controlled moment and returns the `FaultReport` (the caller asserts or tabulates it).

Moments: a test hook (`cj_plumbing.test_hooks`) where the fault must hit one exact step (a
worker between the Kafka ack and XACK, the operator between a commit and what follows it, the
API between queuing and replying); otherwise once a third of the batch is recorded while
comparisons are in flight (`BatchUnderFault.until_midway`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from cj_operator.db.models import ComparisonPair, PairStatus
from cj_plumbing.test_hooks import Point
from common_core import EventEnvelope, LLMComparisonResultV1
from tests.faults.harness import FaultReport, FaultStack, kill, operator_active, poll
from tests.support.kafka import collect_records
from tests.support.metrics import metric


async def worker_killed_before_xack(stack: FaultStack) -> FaultReport:
    """A worker is SIGKILLed after Kafka took its event and before XACK; the other worker
    reclaims the entry after the visibility timeout and publishes it again (a duplicate)."""
    batch = await stack.batch("worker-before-xack")
    await batch.until_midway()
    stack.arm(Point.WORKER_BEFORE_ACK)
    held = await stack.held(Point.WORKER_BEFORE_ACK)
    worker = stack.process_with_pid(held["pid"])
    cid = held["correlation_id"]
    async with batch.fault("worker SIGKILLed between Kafka ack and XACK") as fault:
        kill(worker)

    async def published_twice() -> bool:
        records = await collect_records(
            stack.cluster.kafka_bootstrap_servers, stack.config.callback_topic, idle=0.5
        )
        ids = {
            str(e.event_id)
            for e in (
                EventEnvelope[LLMComparisonResultV1].model_validate_json(r.value) for r in records
            )
            if str(e.data.correlation_id) == cid
        }
        return len(ids) >= 2

    await poll(published_twice, 60, f"the reclaimed entry {cid} published again", every=0.5)
    worker.start()  # back for the next case; it boots while this batch finishes
    report = await batch.finish(fault)
    report.context["held correlation id"] = cid
    if report.ledger.duplicates_seen < 1:
        report.extra_problems.append("the reclaimed entry was not published a second time")
    return report


async def operator_killed_before_submit(stack: FaultStack) -> FaultReport:
    """The operator is SIGKILLed after a round's pairs are committed (PENDING) and before they
    are POSTed to the provider API; restarted, it submits them."""
    batch = await stack.batch("operator-before-submit")
    await batch.until_midway()
    stack.arm(Point.OPERATOR_BEFORE_SUBMIT)
    held = await stack.held(Point.OPERATOR_BEFORE_SUBMIT)
    assert stack.stack.operator is not None
    async with batch.fault("operator SIGKILLed between a round's commit and its POST") as fault:
        kill(stack.stack.operator)
        pending = await _count(stack, batch.uid, PairStatus.PENDING)
        await asyncio.to_thread(stack.stack.start_operator)
        fault.cleared()
    report = await batch.finish(fault)
    report.context.update(held_pairs=held["pairs"], rounds=held["rounds"], pending=pending)
    if pending < held["pairs"]:
        report.extra_problems.append(
            f"{pending} pairs PENDING at the kill, the held submission had {held['pairs']}"
        )
    return report


async def operator_killed_before_offset_commit(stack: FaultStack) -> FaultReport:
    """The operator is SIGKILLed after a poll's results are committed in PostgreSQL and before
    its Kafka offsets are; restarted, it reads the same events again and counts them as
    duplicates."""
    batch = await stack.batch("operator-before-offsets")
    await batch.until_midway()
    stack.arm(Point.OPERATOR_BEFORE_OFFSET_COMMIT)
    held = await stack.held(Point.OPERATOR_BEFORE_OFFSET_COMMIT)
    assert stack.stack.operator is not None
    async with batch.fault("operator SIGKILLed between a poll's commit and its offsets") as fault:
        kill(stack.stack.operator)
        operator = await asyncio.to_thread(stack.stack.start_operator)
        fault.cleared()
    report = await batch.finish(fault)
    reread = metric(operator.url, "cj_operator_callbacks_total", outcome="duplicate")
    report.context.update(held_records=held["records"], counted_as_duplicates=reread)
    if reread < held["records"]:
        report.extra_problems.append(
            f"the restarted operator counted {reread:.0f} duplicates; the poll it re-read had "
            f"{held['records']} records"
        )
    return report


async def kafka_stopped(stack: FaultStack) -> FaultReport:
    """The Kafka broker is stopped for `kafka_outage_s` mid-batch, then started again."""
    batch = await stack.batch("kafka-stopped")
    await batch.until_midway()
    seconds = stack.settings.kafka_outage_s
    async with batch.fault(f"Kafka broker stopped {seconds:.0f} s") as fault:
        async with stack.services.stopped("kafka"):
            await asyncio.sleep(seconds)
        fault.cleared()
    return await batch.finish(fault)


async def redis_restarted(stack: FaultStack) -> FaultReport:
    """Redis (AOF, everysec) is restarted mid-batch."""
    return await _service_restarted(stack, "redis", "Redis restarted (AOF)")


async def postgres_restarted(stack: FaultStack) -> FaultReport:
    """PostgreSQL is restarted mid-batch."""
    return await _service_restarted(stack, "postgres", "PostgreSQL restarted")


async def _service_restarted(stack: FaultStack, service: str, description: str) -> FaultReport:
    batch = await stack.batch(f"{service}-restarted")
    await batch.until_midway()
    async with batch.fault(description) as fault:
        async with stack.services.stopped(service):
            pass
        fault.cleared()
    return await batch.finish(fault)


async def api_killed_mid_submission(stack: FaultStack) -> FaultReport:
    """The provider API is SIGKILLed after queuing a bulk submission and before replying; the
    operator sees the call fail, keeps the pairs PENDING and sends them again once the API is
    restarted (the queued copies are judged as well: duplicates)."""
    batch = await stack.batch("api-mid-submission")
    await batch.until_midway()
    stack.arm(Point.API_BEFORE_REPLY)
    held = await stack.held(Point.API_BEFORE_REPLY)
    api = stack.stack.api
    assert api is not None
    async with batch.fault("provider API SIGKILLed between queuing and replying") as fault:
        kill(api)
        api.start()
        await asyncio.to_thread(stack.stack.wait_api)
        fault.cleared()
    report = await batch.finish(fault)
    report.context["queued before the kill"] = held["queued"]
    return report


async def active_replica_killed(stack: FaultStack) -> FaultReport:
    """Two operator replicas with peering; the active one is SIGKILLed mid-batch and the
    standby takes over once the dead one's peering lifetime has passed."""
    active, standby = await stack.start_peers((20, 10))
    await poll(
        lambda: _is(operator_active(active) and not operator_active(standby)),
        60,
        "replica-0 active, replica-1 standing by",
    )
    batch = await stack.batch("active-replica-killed")
    await batch.until_midway()
    async with batch.fault("active operator replica SIGKILLed, standby takes over") as fault:
        kill(active)
        await poll(lambda: _is(operator_active(standby)), 120, "the standby taking over")
        fault.cleared()
    return await batch.finish(fault)


async def _is(value: bool) -> bool:
    return value


async def _count(stack: FaultStack, uid: str, status: PairStatus) -> int:
    async with stack.db.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(ComparisonPair)
                    .where(ComparisonPair.batch_uid == uid, ComparisonPair.status == status)
                )
            ).scalar_one()
        )


@dataclass(frozen=True)
class Case:
    """A named case of the suite and the benchmark."""

    key: str
    run: Callable[[FaultStack], Awaitable[FaultReport]]


CASES: tuple[Case, ...] = (
    Case("worker-before-xack", worker_killed_before_xack),
    Case("operator-before-submit", operator_killed_before_submit),
    Case("operator-before-offsets", operator_killed_before_offset_commit),
    Case("kafka-stopped", kafka_stopped),
    Case("redis-restarted", redis_restarted),
    Case("postgres-restarted", postgres_restarted),
    Case("api-mid-submission", api_killed_mid_submission),
    Case("active-replica-killed", active_replica_killed),
)
"""Every case, in the order they run (the peering case last: it replaces the operator)."""
