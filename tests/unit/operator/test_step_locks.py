"""The engine's per-batch step locks: one step at a time per batch, dropped once settled."""

from __future__ import annotations

import asyncio

from cj_operator.engine.scheduler import StepLocks


async def test_a_settled_batch_keeps_no_lock() -> None:
    locks = StepLocks()
    async with locks.hold("a"):
        assert len(locks) == 1
    assert len(locks) == 1  # not settled: kept for the next step
    async with locks.hold("a"):
        locks.settle("a")
    assert len(locks) == 0


async def test_steps_of_one_batch_never_overlap_and_a_waiter_keeps_the_lock() -> None:
    locks = StepLocks()
    inside = 0
    most = 0
    order: list[str] = []

    async def step(name: str, settle: bool) -> None:
        nonlocal inside, most
        async with locks.hold("a"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            order.append(name)
            if settle:
                locks.settle("a")
            inside -= 1

    # The first step settles the batch while a second waits: the lock must survive for it.
    await asyncio.gather(step("first", True), step("second", False))
    assert most == 1
    assert order == ["first", "second"]
    assert len(locks) == 1  # the second step ran after and did not settle


async def test_other_batches_run_side_by_side() -> None:
    locks = StepLocks()
    started = asyncio.Event()

    async def hold_a() -> None:
        async with locks.hold("a"):
            started.set()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(hold_a())
    await started.wait()
    async with locks.hold("b"):  # does not wait for "a"
        assert not task.done()
    await task
