"""The fault suite's one stack (started once, reused by every case) and its summary.

Each case stops or kills something; the fixture below brings every cluster service and every
process of the stack back before and after each case, so the suite always leaves the local
cluster running, whatever a case did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.faults.harness import REPORTS, FaultSettings, FaultStack, markdown_table
from tests.support.devcluster import ClusterEnv

SUITE_BUDGET_S = 360
"""Issue 12: the suite stays under 6 minutes on the two-core machine."""

_STARTED: list[float] = []
_FINISHED: list[float] = []
"""When the suite's stack was created and closed (monotonic s): its own wall time, not the
rest of the session's tests that pytest runs before the terminal summary."""


@pytest_asyncio.fixture(scope="module")
async def fault_stack(
    cluster: ClusterEnv, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultStack]:
    """The API, two workers and the operator for every case of the module (own namespace,
    database, topics and Redis prefix; deleted afterwards)."""
    _STARTED.append(time.monotonic())
    stack = await FaultStack.create(
        cluster, tmp_path_factory.mktemp("faults"), FaultSettings(), uuid.uuid4().hex[:8]
    )
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close(cleanup=True)
        _FINISHED.append(time.monotonic())


@pytest_asyncio.fixture(autouse=True)
async def everything_running(fault_stack: FaultStack) -> AsyncIterator[None]:
    """Every service and process up before the case; every cluster service up again after it,
    pass or fail (processes are restarted by the next case, if there is one)."""
    await fault_stack.ensure_running()
    try:
        yield
    finally:
        await fault_stack.ensure_running(processes=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The cases' figures as a table, and the suite's wall time against its budget."""
    if not REPORTS:
        return
    end = _FINISHED[-1] if _FINISHED else time.monotonic()
    wall = end - _STARTED[0] if _STARTED else 0.0
    terminalreporter.section("fault suite (issue 12)")
    terminalreporter.write_line(markdown_table(REPORTS))
    terminalreporter.write_line(f"{len(REPORTS)} cases in {wall:.0f} s (budget {SUITE_BUDGET_S} s)")
