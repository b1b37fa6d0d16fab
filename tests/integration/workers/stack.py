"""Run the provider API and workers as real processes against the local cluster, and read
what they publish."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from cj_workers.keys import RedisKeys
from cj_workers.queue import RequestQueue
from common_core import EventEnvelope, LLMComparisonResultV1
from tests.support.devcluster import ClusterEnv
from tests.support.processes import ManagedProcess, free_port

Event = EventEnvelope[LLMComparisonResultV1]


@dataclass
class Stack:
    """Starts API and worker processes sharing one Redis prefix and one callback topic."""

    cluster: ClusterEnv
    prefix: str
    topic: str
    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.cluster.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.cluster.kafka_bootstrap_servers,
            "CJ_REDIS_KEY_PREFIX": self.prefix,
            "CJ_KAFKA_TOPICS": json.dumps([self.topic]),
            "CJ_API_CALLBACK_TOPIC_PATTERN": r"^test\..+",
            "CJ_LOG_FORMAT": "json",
            "CJ_LOG_LEVEL": "INFO",
            **extra,
        }

    def api(self, name: str = "api", **extra: str) -> tuple[ManagedProcess, str]:
        """Start an API; returns it and its base URL once /readyz answers 200."""
        port = free_port()
        proc = ManagedProcess(
            name, ["-m", "cj_workers.api"], self.env(CJ_API_PORT=str(port), **extra), self.log_dir
        ).start()
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.wait_http_ok(f"{url}/readyz", timeout=60)
        return proc, url

    def worker(
        self, name: str, *, wait_ready: bool = True, **extra: str
    ) -> tuple[ManagedProcess, str]:
        """Start a worker; returns it and its metrics URL (after /healthz answers)."""
        port = free_port()
        defaults = {
            "CJ_WORKER_METRICS_PORT": str(port),
            "CJ_WORKER_CONSUMER_NAME": name,
            "CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS": "2",
            "CJ_WORKER_RECLAIM_INTERVAL_SECONDS": "0.5",
            "CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS": "10",
        }
        env = self.env(**{**defaults, **extra})
        proc = ManagedProcess(name, ["-m", "cj_workers.worker"], env, self.log_dir).start()
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        if wait_ready:
            proc.wait_http_ok(f"{url}/healthz", timeout=60)
        return proc, url

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    def queue(self, redis: aioredis.Redis) -> RequestQueue:
        return RequestQueue(redis, RedisKeys(self.prefix), "cj-workers")


def metric(url: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The value of one sample on a /metrics page (0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    want = dict(labels or {})
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    for m in pattern.finditer(text):
        if dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == want:
            return float(m.group(2))
    return 0.0


def request(topic: str, case: str, **overrides: Any) -> dict[str, Any]:
    """A comparison request body tagged with metadata["case"]."""
    body: dict[str, Any] = {
        "user_prompt": "Assignment: should schools start later? Rubric: argument, language.",
        "essay_a": "Schools should start later because teenagers need sleep to learn well.",
        "essay_b": "i think school start is ok becuase we go early and its fine.",
        "callback_topic": topic,
        "metadata": {"case": case, "batch_id": "batch-default"},
    }
    body.update(overrides)
    return body


async def collect(
    cluster: ClusterEnv, topic: str, count: int, within: float = 60.0, settle: float = 0.0
) -> list[tuple[bytes | None, Event]]:
    """Read (key, envelope) pairs from the start of `topic` until `count` arrived, then for
    `settle` more seconds (to see any extra). AssertionError when `within` s pass first."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=cluster.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[tuple[bytes | None, Event]] = []
    try:
        deadline = time.monotonic() + within
        while len(out) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out += [(r.key, Event.model_validate_json(r.value)) for r in records]
        if len(out) < count:
            raise AssertionError(f"{len(out)} of {count} events on {topic} after {within} s")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [(r.key, Event.model_validate_json(r.value)) for r in records]
    finally:
        await consumer.stop()
    return out


async def wait_for(check: Any, within: float, what: str) -> None:
    """Await the async `check()` until truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what} after {within} s")
