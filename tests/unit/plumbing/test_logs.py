"""The logging set-up, run in a child process so the global logging state of the tests stays."""

from __future__ import annotations

import json
import subprocess
import sys

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
    ]
    first = lines[0]
    assert first["correlation_id"] == "c-1" and first["batch"] == "b" and first["n"] == 1
    assert first["level"] == "info" and first["logger"] == "cj_test" and "timestamp" in first
    assert "correlation_id" not in lines[1]
    assert proc.stdout.split() == [str(30), str(30)]  # WARNING
