"""The logging set-up, run in a child process so the global logging state of the tests stays."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from cj_plumbing.logs import RepeatedMessageFilter

SCRIPT = """
import logging
import structlog
from cj_plumbing.logs import configure_logging

configure_logging("INFO", "json")
log = structlog.get_logger("cj_test")
with structlog.contextvars.bound_contextvars(correlation_id="c-1", batch="b"):
    log.info("with context", n=1)
log.debug("below the level")
logging.getLogger("kopf.objects").info("from the standard library")
logging.getLogger("aiokafka").info("connection attempt failed")
logging.getLogger("aiokafka").warning("kept")
for _ in range(100):
    logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s", 1)
print(logging.getLogger("httpx").level, logging.getLogger("kubernetes").level)
"""


def test_json_lines_carry_context_and_quiet_the_client_libraries() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [line["event"] for line in lines] == [
        "with context",
        "from the standard library",
        "kept",
        "Unable connect to node with id 1",  # once: the 99 repeats are held back
    ]
    first = lines[0]
    assert first["correlation_id"] == "c-1" and first["batch"] == "b" and first["n"] == 1
    assert first["level"] == "info" and first["logger"] == "cj_test" and "timestamp" in first
    assert "correlation_id" not in lines[1]
    assert proc.stdout.split() == [str(30), str(30)]  # WARNING


def test_a_client_librarys_repeated_message_is_logged_once_per_window() -> None:
    """aiokafka's reconnect errors during an outage: one line per 30 s, then a count."""
    now = [0.0]
    keep = RepeatedMessageFilter(clock=lambda: now[0])

    def record(name: str, msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    first = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
    assert keep.filter(first)
    assert first.getMessage() == "Unable connect to node with id 1: refused"
    now[0] = 10.0
    assert not any(
        keep.filter(record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "x"))
        for _ in range(500)
    )
    # Another template, and other loggers, are not held back.
    assert keep.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert all(keep.filter(record("cj_worker", "same line")) for _ in range(3))
    now[0] = 31.0
    later = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
    assert keep.filter(later)
    assert later.getMessage() == (
        "Unable connect to node with id 1: refused [500 more like this in 30 s suppressed]"
    )
    now[0] = 62.0
    again = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
    assert keep.filter(again) and "suppressed" not in again.getMessage()
