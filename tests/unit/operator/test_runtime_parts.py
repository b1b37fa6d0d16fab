"""Status coalescing, the peering rule, and callback parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from cj_operator.kafka_io import parse_callback
from cj_operator.leadership import is_active
from cj_operator.status.patcher import Coalescer
from common_core import EventEnvelope, LLMComparisonResultV1
from tests.support.factories import success


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_coalescer_patches_at_most_once_per_interval() -> None:
    clock = Clock()
    c = Coalescer(1.0, clock)
    c.mark("a")
    assert c.due() == (["a"], None)
    c.taken("a")
    for _ in range(50):
        clock.now += 0.01
        c.mark("a")
    ready, wait = c.due()
    assert ready == []
    assert wait == pytest.approx(0.5)
    clock.now = 1.0
    assert c.due()[0] == ["a"]
    assert c.taken("a") == pytest.approx(0.01)
    assert c.due() == ([], None)


def test_coalescer_batches_are_independent() -> None:
    clock = Clock()
    c = Coalescer(1.0, clock)
    c.mark("a")
    c.taken("a")
    c.mark("a")
    c.mark("b")
    ready, wait = c.due()
    assert ready == ["b"] and wait == pytest.approx(1.0)
    c.forget("a")
    assert c.due()[0] == ["b"]


def _peer(priority: int, seen: datetime, lifetime: int = 60) -> dict[str, object]:
    return {"priority": priority, "lastseen": seen.isoformat(), "lifetime": lifetime}


def test_peering_rule() -> None:
    now = datetime.now(UTC)
    me = "pod-a"
    assert is_active({me: _peer(10, now)}, me, 10, now)
    assert not is_active({}, me, 10, now)
    assert not is_active({me: _peer(10, now), "pod-b": _peer(20, now)}, me, 10, now)
    assert not is_active({me: _peer(10, now), "pod-b": _peer(10, now)}, me, 10, now)
    assert is_active({me: _peer(10, now), "pod-b": _peer(5, now)}, me, 10, now)
    dead = now - timedelta(seconds=120)
    assert is_active({me: _peer(10, now), "pod-b": _peer(20, dead)}, me, 10, now)


def test_parse_callback() -> None:
    result = success(uuid4())
    envelope = EventEnvelope[LLMComparisonResultV1](
        event_type="llm_provider.comparison_result",
        source_service="w",
        correlation_id=result.correlation_id,
        data=result,
    )
    assert parse_callback(envelope.model_dump_json().encode()) == result
    for bad in (None, b"", b"{}", b"\xff\xfe", b'{"data": 1}'):
        with pytest.raises(ValueError):  # noqa: PT011 - any ValueError (pydantic's included)
            parse_callback(bad)


async def test_supervisor_runs_workers_only_while_active() -> None:
    import asyncio

    from cj_operator.leadership import PeeringGate, supervise

    gate = PeeringGate(kube=None, peering_name="p", identity="me", priority=1, standalone=False)
    running: set[str] = set()
    starts: list[str] = []
    reported: list[bool] = []

    def worker(name: str, crash: bool = False) -> Any:
        async def run() -> None:
            running.add(name)
            starts.append(name)
            try:
                if crash and starts.count(name) == 1:
                    raise RuntimeError("boom")
                await asyncio.Event().wait()
            finally:
                running.discard(name)

        run.__qualname__ = name
        return run

    task = asyncio.create_task(
        supervise(gate, [worker("a"), worker("b", crash=True)], reported.append, 0.01)
    )
    await asyncio.sleep(0.05)
    assert running == set() and reported == []
    gate.set_active(True)
    await asyncio.sleep(0.1)
    assert running == {"a", "b"}
    assert starts.count("b") == 2  # crashed once, restarted on its own
    assert starts.count("a") == 1
    gate.set_active(False)
    await asyncio.sleep(0.05)
    assert running == set()
    assert reported[-1] is False
    gate.set_active(True)
    await asyncio.sleep(0.05)
    assert running == {"a", "b"}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert running == set()
