"""Test hooks: hold a process at a named point so the fault suite can SIGKILL it exactly there.

Off unless the environment variable `CJ_TEST_HOOK_DIR` names a directory. Only the fault
suite (tests/faults/) sets it. It is deliberately not a setting of any process: the chart
never sets it and values.schema.json does not admit it.

A test arms point P by creating the file `<dir>/P`. The first process to reach P claims it
(an atomic rename, so exactly one process stops even when several workers race for it),
writes `<dir>/P.taken` (JSON: `pid`, `point` and the point's context), logs a warning and
then waits until it is killed. Without the file, or without the variable, reaching a point
costs one rename attempt or one environment lookup and changes nothing.

The points (`Point`):

- `worker-before-ack`: a worker's result event is on Kafka; its stream entry is not yet
  acknowledged (XACK). Context: `correlation_id`, `entry_id`.
- `operator-before-submit`: a batch's pairs are committed in PostgreSQL (PENDING); their
  HTTP submission to the provider API has not started. Context: `batch_uid`, `pairs`,
  `rounds`.
- `operator-before-offset-commit`: a poll of callback events is recorded in PostgreSQL (the
  transaction committed); its Kafka offsets are not yet committed. Context: `records`,
  `correlation_ids`.
- `api-before-reply`: the provider API has queued a bulk request's items in Redis; its
  response (202/207) is not yet sent. Context: `queued`, `correlation_ids`.
"""

from __future__ import annotations

import asyncio
import json
import os
from enum import StrEnum
from pathlib import Path

import structlog

log = structlog.get_logger("cj_plumbing.test_hooks")

HOOK_DIR_ENV = "CJ_TEST_HOOK_DIR"
"""The environment variable that switches the hooks on (a directory path)."""


class Point(StrEnum):
    """Where a process can be held (module docstring)."""

    WORKER_BEFORE_ACK = "worker-before-ack"
    OPERATOR_BEFORE_SUBMIT = "operator-before-submit"
    OPERATOR_BEFORE_OFFSET_COMMIT = "operator-before-offset-commit"
    API_BEFORE_REPLY = "api-before-reply"


def claim(point: Point, context: dict[str, object]) -> Path | None:
    """Claim point `point` when it is armed: returns the `.taken` file written (its JSON holds
    `pid`, `point` and `context`), or None when hooks are off or the point is not armed."""
    directory = os.environ.get(HOOK_DIR_ENV)
    if not directory:
        return None
    armed = Path(directory) / point.value
    claiming = armed.with_name(f"{point.value}.claiming-{os.getpid()}")
    try:
        os.rename(armed, claiming)  # atomic: of several processes, one wins
    except FileNotFoundError:
        return None
    claiming.write_text(
        json.dumps({"pid": os.getpid(), "point": point.value, **context}, default=str),
        encoding="utf-8",
    )
    taken = armed.with_name(f"{point.value}.taken")
    os.rename(claiming, taken)  # the test sees the file complete or not at all
    return taken


async def hold_if_armed(point: Point, **context: object) -> None:
    """Wait forever (until the process is killed) when `point` is armed; else return at once.

    `context` (JSON-serialisable, `str()` otherwise) goes into the `.taken` file and the log.
    """
    if claim(point, context) is None:
        return
    log.warning("test hook: holding here until killed", point=point.value, **context)
    await asyncio.Event().wait()
