"""`cj-check` (the chart's `helm test` command) against the real PostgreSQL, Redis, Kafka and a
running provider API: all pass on a ready installation; each kind of broken dependency fails
with its own line and exit status 1; passwords are never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from cj_operator.dependency_check import schema_head
from cj_operator.migrate import upgrade
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import TopicFactory, unique_name
from tests.support.processes import free_port
from tests.support.stack import Stack, StackConfig

PASSWORD = "s3cret-pw"  # PostgreSQL's trust authentication ignores it


def with_password(url: str) -> str:
    """`url` with PASSWORD as its password (and user `cj` when it names none)."""
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def cj_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the console script as the test pod does (only these variables set)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "cj-check")],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def api(cluster: ClusterEnv, redis_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    """A running provider API (no workers, no operator)."""
    stack = Stack(
        StackConfig(
            cluster=cluster,
            callback_topic=unique_name("test.") + ".callbacks",
            redis_prefix=redis_prefix,
            group=unique_name("t-"),
            workers=0,
            operator=False,
        ),
        tmp_path,
    )
    stack.start_api()
    yield stack
    stack.stop()


@pytest.mark.timeout(300)
async def test_cj_check_passes_on_ready_services_and_names_each_broken_one(
    cluster: ClusterEnv, database_url: str, kafka_topic: TopicFactory, api: Stack
) -> None:
    topics = [await kafka_topic("callbacks", partitions=3), await kafka_topic("completed")]
    closed = f"127.0.0.1:{free_port()}"
    broken = cj_check(
        {
            # A fresh database: not migrated yet.
            "DATABASE_URL": with_password(database_url),
            "REDIS_URL": f"redis://:{PASSWORD}@{closed}/0",
            "KAFKA_BOOTSTRAP_SERVERS": cluster.kafka_bootstrap_servers,
            "CJ_CHECK_KAFKA_TOPICS": json.dumps([*topics, "test.never.created"]),
            "CJ_CHECK_PROVIDER_API_URL": f"http://{closed}",
            "CJ_CHECK_TIMEOUT_SECONDS": "5",
        }
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr
    lines = broken.stdout.splitlines()
    assert len(lines) == 5, lines
    postgres, redis, kafka, provider, last = lines
    head = schema_head()
    assert postgres.startswith("PostgreSQL    FAIL  ")
    assert (
        f"the schema is not migrated (no alembic revision; this operator needs {head})" in postgres
    )
    assert redis.startswith(f"Redis         FAIL  {closed}/0: ")
    assert kafka.startswith(f"Kafka         FAIL  {cluster.kafka_bootstrap_servers}: ")
    assert ": topic missing: test.never.created (" in kafka
    assert provider.startswith(f"provider API  FAIL  http://{closed}/readyz: ConnectError")
    assert last == "cj-check: 4 of 4 checks failed"
    assert PASSWORD not in broken.stdout + broken.stderr

    await upgrade(database_url)
    ready = cj_check(
        {
            "DATABASE_URL": with_password(database_url),
            "REDIS_URL": cluster.redis_url,  # this Redis has no password: AUTH would fail
            "KAFKA_BOOTSTRAP_SERVERS": cluster.kafka_bootstrap_servers,
            "CJ_CHECK_KAFKA_TOPICS": json.dumps(topics),
            "CJ_CHECK_PROVIDER_API_URL": api.api_url + "/",
        }
    )
    assert ready.returncode == 0, ready.stdout + ready.stderr
    lines = ready.stdout.splitlines()
    db = urlsplit(database_url)
    assert (
        lines[0] == f"PostgreSQL    ok    {db.hostname}:{db.port}{db.path}: schema at head ({head})"
    )
    assert lines[1].startswith("Redis         ok    ") and lines[1].endswith(": PING answered")
    assert lines[2].startswith("Kafka         ok    ") and lines[2].endswith(
        f"including {', '.join(topics)}"
    )
    assert lines[3].startswith(f"provider API  ok    {api.api_url}/readyz: 200 ")
    assert lines[4] == "cj-check: all 4 checks passed"
    assert PASSWORD not in ready.stdout + ready.stderr
