"""Which replica is active: the one kopf's peering lets run (only it consumes callbacks).

kopf pauses a replica's handlers while a live peer with a higher priority exists (or one with
the same priority: then all pause). The operator's own background work (callback consumer,
engine, monitor, status patcher) must follow the same decision, so `PeeringGate` reads the
same ClusterKopfPeering object and applies kopf's rule (`is_active`). With --standalone the
replica is always active.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from cj_operator.k8s_io import KubeApi
from cj_plumbing.backoff import exponential_backoff

log = structlog.get_logger("cj_operator.leadership")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_active(peers: Mapping[str, Any], identity: str, priority: int, now: datetime) -> bool:
    """kopf's peering rule for this replica.

    `peers` is the peering object's `status`: identity -> {priority, lastseen, lifetime}.
    Active when this replica is listed and no other live peer has a priority >= its own. A
    peer is dead once `lastseen + lifetime` has passed.
    """
    if identity not in peers:
        return False
    for other, info in peers.items():
        if other == identity or not isinstance(info, Mapping):
            continue
        seen = _parse_time(info.get("lastseen"))
        lifetime = info.get("lifetime", 60)
        if seen is None or not isinstance(lifetime, int | float):
            continue
        if seen + timedelta(seconds=float(lifetime)) <= now:
            continue
        other_priority = info.get("priority", 0)
        if isinstance(other_priority, int) and other_priority >= priority:
            return False
    return True


class PeeringGate:
    """`active` is set while this replica may do the operator's background work."""

    def __init__(
        self,
        *,
        kube: KubeApi | None,
        peering_name: str,
        identity: str | None,
        priority: int,
        standalone: bool,
        poll_seconds: float = 5.0,
    ) -> None:
        self._kube = kube
        self._name = peering_name
        self._identity = identity
        self._priority = priority
        self._standalone = standalone
        self._poll = poll_seconds
        self.active = asyncio.Event()
        self.changed = asyncio.Event()
        if standalone:
            self.active.set()

    def set_active(self, active: bool) -> None:
        """Record whether this replica may work (the peering loop calls it)."""
        if active != self.active.is_set():
            log.info("replica is now " + ("active" if active else "standby"), peering=self._name)
            if active:
                self.active.set()
            else:
                self.active.clear()
            self.changed.set()

    async def run(self) -> None:
        """Follow the peering object until cancelled (returns at once when standalone)."""
        if self._standalone or self._kube is None or self._identity is None:
            return
        while True:
            try:
                peering = await self._kube.read_peering(self._name)
                status = (peering or {}).get("status") or {}
                self.set_active(
                    is_active(status, self._identity, self._priority, datetime.now(UTC))
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot read the peering object; standing by", error=repr(exc))
                self.set_active(False)
            await asyncio.sleep(self._poll)


Worker = Callable[[], Coroutine[Any, Any, None]]


async def keep_running(worker: Worker, first_delay: float = 1.0, max_delay: float = 30.0) -> None:
    """Run `worker` again whenever it ends or fails, waiting longer after each failure.

    The wait starts at `first_delay` seconds and doubles up to `max_delay`; a run that lasted
    longer than `max_delay` resets it. Runs until cancelled.
    """
    restarts = 0  # restarts since the last run that lasted longer than max_delay
    while True:
        started = time.monotonic()
        try:
            await worker()
            error = "returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = repr(exc)
        if time.monotonic() - started > max_delay:
            restarts = 0
        restarts += 1
        delay = exponential_backoff(restarts, base=first_delay, cap=max_delay, jitter=False)
        log.error(
            "background task ended; restarting", task=worker.__qualname__, error=error, delay=delay
        )
        await asyncio.sleep(delay)


async def supervise(
    gate: PeeringGate,
    workers: Sequence[Worker],
    on_active: Callable[[bool], None],
    restart_delay: float = 1.0,
) -> None:
    """Run `workers` while `gate` is active and cancel them on standby; a worker that ends or
    fails is restarted on its own (`keep_running`), the others go on.

    Runs until cancelled. `on_active(True/False)` reports each start and stop.
    """
    while True:
        await gate.active.wait()
        on_active(True)
        tasks = [
            asyncio.create_task(keep_running(w, restart_delay), name=f"cj-{w.__qualname__}")
            for w in workers
        ]
        try:
            await _wait_standby(gate)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            on_active(False)


async def _wait_standby(gate: PeeringGate) -> None:
    while gate.active.is_set():
        gate.changed.clear()
        await gate.changed.wait()
