"""Kill or restart every component mid-batch: nothing is lost, nothing is counted twice.

Each case runs one batch of the `mock` judge through the real local system (provider API, two
workers, the operator; PostgreSQL, Redis, Kafka, kube-apiserver) and injects one fault
(tests/faults/cases.py); `check` asserts the ledger: Completed, completed + failed ==
submitted, every comparison answered and counted once, the batch's cost what its rows cost,
one completion event id. The recovery time is printed and summarised at the end.
"""

from __future__ import annotations

from tests.faults import cases
from tests.faults.harness import FaultStack, check


async def test_worker_killed_between_kafka_ack_and_xack(fault_stack: FaultStack) -> None:
    check(await cases.worker_killed_before_xack(fault_stack), fault_stack)


async def test_operator_killed_between_round_commit_and_submission(
    fault_stack: FaultStack,
) -> None:
    check(await cases.operator_killed_before_submit(fault_stack), fault_stack)


async def test_operator_killed_between_poll_commit_and_offset_commit(
    fault_stack: FaultStack,
) -> None:
    check(await cases.operator_killed_before_offset_commit(fault_stack), fault_stack)


async def test_kafka_broker_stopped_mid_batch(fault_stack: FaultStack) -> None:
    check(await cases.kafka_stopped(fault_stack), fault_stack)


async def test_redis_restarted_mid_batch(fault_stack: FaultStack) -> None:
    check(await cases.redis_restarted(fault_stack), fault_stack)


async def test_postgres_restarted_mid_batch(fault_stack: FaultStack) -> None:
    check(await cases.postgres_restarted(fault_stack), fault_stack)


async def test_provider_api_killed_mid_submission(fault_stack: FaultStack) -> None:
    check(await cases.api_killed_mid_submission(fault_stack), fault_stack)


async def test_standby_replica_takes_over_from_a_killed_active_one(
    fault_stack: FaultStack,
) -> None:
    check(await cases.active_replica_killed(fault_stack), fault_stack)
