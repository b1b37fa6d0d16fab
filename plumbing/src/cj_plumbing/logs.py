"""structlog set-up of every process (operator, provider API, workers): JSON when not on a TTY."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Literal

import structlog

QUIET_LOGGERS = ("aiokafka", "httpx", "kubernetes", "urllib3")
"""Standard-library loggers kept to warnings and above. The Kafka client logs every failed
connection attempt at ERROR, and the HTTP and Kubernetes clients log every request at INFO;
our own code already reports those failures with context."""


REPEAT_WINDOW_SECONDS = 30.0
"""How often one repeated message of a client library may be logged (RepeatedMessageFilter)."""


class RepeatedMessageFilter(logging.Filter):
    """Let a client library's repeated message through once per `window_s` seconds.

    While Kafka is down, aiokafka logs every reconnect attempt of every client at ERROR: a
    worker or the operator wrote ~29,000 lines a minute in the fault suite's 20 s outage,
    which buries everything else and costs log storage at scale. A record from one of
    `loggers` (the logger or a child of it) whose (logger, level, message template) was let
    through less than `window_s` seconds ago is dropped; the next one let through says how
    many were dropped ("... [1234 more like this in 30 s suppressed]"). Records of other
    loggers always pass. `clock` returns seconds (monotonic); tests pass a fake one.
    """

    def __init__(
        self,
        loggers: tuple[str, ...] = QUIET_LOGGERS,
        window_s: float = REPEAT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._loggers = loggers
        self._window = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == q or name.startswith(q + ".") for q in self._loggers):
            return True
        key = (name, record.levelno, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        suppressed = last[1] if last is not None else 0
        if len(self._seen) > 1000:  # message templates are few; never grow without bound
            self._seen.clear()
        self._seen[key] = (now, 0)
        if suppressed:
            note = f" [{suppressed} more like this in {self._window:g} s suppressed]"
            record.msg = f"{record.msg}{note.replace('%', '%%')}"
        return True


def configure_logging(
    level: str = "INFO", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Route structlog and the standard library's logging (kopf's loggers too) through one
    renderer on stderr.

    `level` is a standard-library level name ("DEBUG", "INFO", ...); raises ValueError for an
    unknown one. `fmt="auto"` renders for humans on a TTY and one JSON object per line
    otherwise (pods). Context bound with `structlog.contextvars.bind_contextvars`
    (batch, correlation_id) appears on every line logged inside that context.
    """
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop below-level events before any work
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatedMessageFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for quiet in QUIET_LOGGERS:
        logging.getLogger(quiet).setLevel(max(logging.WARNING, root.level))
