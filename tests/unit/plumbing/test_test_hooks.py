"""The test hooks the fault suite uses to hold a process at an exact point (cj_plumbing)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from cj_plumbing.test_hooks import HOOK_DIR_ENV, Point, claim, hold_if_armed


@pytest.fixture
def hook_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(HOOK_DIR_ENV, str(tmp_path))
    return tmp_path


def test_without_the_variable_nothing_is_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HOOK_DIR_ENV, raising=False)
    (tmp_path / Point.WORKER_BEFORE_ACK.value).touch()
    assert claim(Point.WORKER_BEFORE_ACK, {}) is None
    assert (tmp_path / Point.WORKER_BEFORE_ACK.value).exists()


def test_an_unarmed_point_is_not_claimed(hook_dir: Path) -> None:
    (hook_dir / Point.API_BEFORE_REPLY.value).touch()  # another point is armed
    assert claim(Point.WORKER_BEFORE_ACK, {}) is None
    assert sorted(p.name for p in hook_dir.iterdir()) == [Point.API_BEFORE_REPLY.value]


def test_an_armed_point_is_claimed_once_with_its_context(hook_dir: Path) -> None:
    (hook_dir / Point.OPERATOR_BEFORE_SUBMIT.value).touch()
    taken = claim(Point.OPERATOR_BEFORE_SUBMIT, {"batch_uid": "u1", "rounds": [2]})
    assert taken == hook_dir / "operator-before-submit.taken"
    record = json.loads(taken.read_text(encoding="utf-8"))
    assert record == {
        "pid": os.getpid(),
        "point": "operator-before-submit",
        "batch_uid": "u1",
        "rounds": [2],
    }
    # The arming file is gone: a second process (or a second arrival) goes on.
    assert claim(Point.OPERATOR_BEFORE_SUBMIT, {}) is None
    assert sorted(p.name for p in hook_dir.iterdir()) == ["operator-before-submit.taken"]


async def test_hold_returns_at_once_unless_armed_then_holds(hook_dir: Path) -> None:
    await asyncio.wait_for(hold_if_armed(Point.WORKER_BEFORE_ACK, correlation_id="c"), 1.0)
    (hook_dir / Point.WORKER_BEFORE_ACK.value).touch()
    held = asyncio.create_task(hold_if_armed(Point.WORKER_BEFORE_ACK, correlation_id="c"))
    await asyncio.sleep(0.2)
    assert not held.done(), "an armed point holds its caller"
    assert (hook_dir / "worker-before-ack.taken").exists()
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
