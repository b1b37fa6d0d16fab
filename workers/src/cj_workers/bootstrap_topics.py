"""``cj-bootstrap-topics``: create the callback and completion topics, then exit.

Reads TopicBootstrapSettings (KAFKA_BOOTSTRAP_SERVERS, CJ_KAFKA_TOPICS, partitions,
replication). Exit status 0 when every topic exists afterwards, 1 otherwise. The API and the
workers run the same bootstrap at start-up (CJ_BOOTSTRAP_TOPICS_ON_START).
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from cj_plumbing.kafka_admin import ensure_topics
from cj_plumbing.logs import configure_logging
from cj_workers.settings import TopicBootstrapSettings, _Common

log = structlog.get_logger(__name__)


async def bootstrap(settings: _Common) -> dict[str, str]:
    """Ensure the configured topics exist; returns topic -> "created" / "exists".

    Raises what `ensure_topics` raises (RuntimeError, TimeoutError, Kafka errors).
    """
    created = await ensure_topics(
        settings.kafka_bootstrap_servers,
        settings.kafka_topics,
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_topic_replication_factor,
        min_insync_replicas=settings.kafka_topic_min_insync_replicas,
        timeout_s=settings.kafka_bootstrap_timeout_seconds,
    )
    outcome = {
        topic: "created" if topic in created else "exists"
        for topic in dict.fromkeys(settings.kafka_topics)
    }
    for topic, state in outcome.items():
        log.info("topic ready", topic=topic, state=state)
    return outcome


async def bootstrap_at_start(settings: _Common) -> bool:
    """The start-up bootstrap: True on success; on failure logs an error and returns False
    (the process goes on; publishing retries until Kafka answers)."""
    if not settings.bootstrap_topics_on_start:
        return True
    try:
        await bootstrap(settings)
    except Exception as exc:
        log.error("topic bootstrap failed", error=f"{type(exc).__name__}: {exc}")
        return False
    return True


def main() -> None:
    """Console entry point."""
    settings = TopicBootstrapSettings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(bootstrap(settings))
    except Exception as exc:
        log.error("topic bootstrap failed", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
