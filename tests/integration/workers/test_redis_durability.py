"""What the provider side requires of its Redis, on real redis-servers of the test's own.

The shared cluster's Redis is not touched: each test starts `redis-server` on a free
loopback port with the flags under test (an evicting policy, AOF) and its own directory.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from cj_workers.keys import RedisKeys
from cj_workers.queue import RequestQueue
from cj_workers.redis_check import EvictingRedisError, require_noeviction
from common_core import LLMComparisonRequest, QueuedRequest
from tests.support.devcluster import REPO_ROOT
from tests.support.processes import free_port
from tests.support.redis_server import OwnRedis, own_redis

DURABLE = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]


async def test_an_evicting_redis_is_refused(tmp_path: Path) -> None:
    with own_redis(tmp_path, ["--maxmemory-policy", "allkeys-lru"]) as server:
        client = aioredis.from_url(server.url)
        try:
            with pytest.raises(EvictingRedisError, match=r"'allkeys-lru'.*noeviction"):
                await require_noeviction(client)
        finally:
            await client.aclose()


async def test_a_noeviction_redis_is_accepted(tmp_path: Path) -> None:
    with own_redis(tmp_path, ["--maxmemory-policy", "noeviction"]) as server:
        client = aioredis.from_url(server.url)
        try:
            assert await require_noeviction(client) == "noeviction"
        finally:
            await client.aclose()


@pytest.mark.parametrize(
    ("module", "name"),
    [("cj_workers.worker", "cj-worker"), ("cj_workers.api", "cj-provider-api")],
)
def test_the_processes_refuse_to_start_on_an_evicting_redis(
    tmp_path: Path, module: str, name: str
) -> None:
    with own_redis(tmp_path / "redis", ["--maxmemory-policy", "volatile-lru"]) as server:
        env = {
            "PATH": "/usr/bin:/bin",
            "REDIS_URL": server.url,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "CJ_BOOTSTRAP_TOPICS_ON_START": "false",
            "CJ_WORKER_METRICS_PORT": "0",
            "CJ_API_PORT": "1",
            "CJ_LOG_FORMAT": "json",
        }
        done = subprocess.run(
            [sys.executable, "-m", module],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{name}: refusing to start: Redis maxmemory-policy is 'volatile-lru'")
    assert "set maxmemory-policy noeviction" in last
    assert "Traceback" not in done.stderr


def _queued() -> QueuedRequest:
    return QueuedRequest.from_request(
        LLMComparisonRequest(
            user_prompt="Assignment",
            essay_a="Essay one.",
            essay_b="Essay two.",
            callback_topic="test.cb",
            correlation_id=uuid4(),
        ),
        ttl_seconds=3600,
    )


async def _enqueue_kill_and_read(server_flags: list[str], tmp_path: Path) -> list[QueuedRequest]:
    """Enqueue one request, SIGKILL the Redis, start it again, read what the workers get."""
    keys = RedisKeys("cj:provider:")
    sent = _queued()
    with own_redis(tmp_path, server_flags) as server:
        client = aioredis.from_url(server.url)
        try:
            queue = RequestQueue(client, keys, "cj-workers")
            await queue.ensure_group()
            outcome = await queue.enqueue([sent], high_water=100, low_water=50)
            assert outcome.entry_ids[0] is not None
            server.restart(kill=True)
            await client.connection_pool.disconnect()
            await queue.ensure_group()
            entries = await queue.read("w1", 10, 100)
        finally:
            await client.aclose()
    got = [QueuedRequest.model_validate_json(e.payload or b"") for e in entries]
    return got


async def test_with_aof_a_killed_redis_keeps_an_enqueued_request(tmp_path: Path) -> None:
    [got] = await _enqueue_kill_and_read([*DURABLE, "--maxmemory-policy", "noeviction"], tmp_path)
    assert got.request_data.essay_a == "Essay one."


async def test_without_persistence_the_same_restart_loses_it(tmp_path: Path) -> None:
    """The control: the old flags (`--save '' --appendonly no`) lose the request."""
    assert await _enqueue_kill_and_read(["--save", "", "--appendonly", "no"], tmp_path) == []


async def test_a_redis_starting_late_is_waited_for(tmp_path: Path) -> None:
    """The check asks again while Redis is not up yet (it starts alongside the pods)."""
    server = OwnRedis(free_port(), tmp_path, ("--maxmemory-policy", "noeviction"))
    client = aioredis.from_url(server.url)
    try:
        check = asyncio.create_task(require_noeviction(client, wait_seconds=20))
        await asyncio.sleep(1.5)
        assert not check.done()
        server.start()
        assert await asyncio.wait_for(check, 10) == "noeviction"
    finally:
        await client.aclose()
        server.stop(kill=True)


async def test_an_unreachable_redis_fails_after_the_wait(tmp_path: Path) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(aioredis.ConnectionError):
            await require_noeviction(client, wait_seconds=1.5)
    finally:
        await client.aclose()
