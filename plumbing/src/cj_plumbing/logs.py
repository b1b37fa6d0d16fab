"""structlog set-up of every process (operator, provider API, workers): JSON when not on a TTY."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

QUIET_LOGGERS = ("aiokafka", "httpx", "kubernetes", "urllib3")
"""Standard-library loggers kept to warnings and above. The Kafka client logs every failed
connection attempt at ERROR, and the HTTP and Kubernetes clients log every request at INFO;
our own code already reports those failures with context."""


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
