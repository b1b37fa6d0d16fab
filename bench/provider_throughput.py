"""Provider-side throughput: 10,000 comparisons through API, Redis, two workers and Kafka.

    .venv/bin/python -m bench.provider_throughput [--requests 10000] [--concurrency 500]

Needs the local cluster (`hack/devcluster up`). Starts one API and two workers (mock judge,
no latency) as real processes on a fresh Redis prefix and a fresh callback topic created with
`message.timestamp.type=LogAppendTime`, submits the requests in bulk (1,000 a call), and reads
every event back. Prints:

- throughput (events/s from the first submission to the last event) and how many requests
  were queued or in flight at the peak; lost and duplicated events (must be 0 lost);
- "answer -> broker append": per event, broker append time (LogAppendTime, ms) minus the
  result's `completed_at` (set right after the judge answered), p50/p99 - the issue's target
  is p99 < 20 ms; and "answer -> ack" from the workers' own
  `cj_provider_callback_publish_duration_seconds` histogram (bucket upper bounds);
- the floor, measured in the same run with the same payloads and concurrency: a raw loop of
  XREADGROUP -> produce (acks=all, idempotent) -> XACK+XDEL, no API, no validation, no judge,
  with the same latency measure.

Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from tests.support.devcluster import ClusterEnv, is_running, read_env
from tests.support.isolation import delete_redis_keys
from tests.support.kafka import collect_records, create_topic, delete_topics
from tests.support.metrics import bucket_quantile, scrape
from tests.support.stack import Stack, StackConfig

BULK = 1000


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def histogram_quantiles(urls: list[str], name: str) -> tuple[float, float]:
    """Upper bounds (ms) of the buckets holding the 50th and 99th percentile of a histogram
    summed over the processes at `urls` (NaN when empty)."""
    buckets = scrape(*urls).buckets(name)

    def upper(q: float) -> float:
        bound = bucket_quantile(buckets, q)
        return float("nan") if bound is None else bound * 1000

    return upper(0.5), upper(0.99)


async def make_topic(cluster: ClusterEnv, name: str) -> None:
    """A 3-partition topic whose records carry the broker's append time."""
    await create_topic(
        cluster.kafka_bootstrap_servers, name, 3, {"message.timestamp.type": "LogAppendTime"}
    )


def body(topic: str, i: int) -> dict[str, object]:
    return {
        "user_prompt": "Assignment: should schools start later? Rubric: argument, language.",
        "essay_a": f"Essay number {i} argues that school should start later. " * 20,
        "essay_b": f"Essay {i} disagrees, because early starts build habits. " * 20,
        "callback_topic": topic,
        "llm_config_overrides": {"provider_override": "mock", "model_override": "mock"},
        "metadata": {"batch_id": "bench", "pair_id": i},
    }


async def read_events(
    cluster: ClusterEnv, topic: str, count: int, within: float
) -> list[tuple[str, float, datetime]]:
    """(correlation_id, broker append time in s, completed_at) of `count` events."""
    records = await collect_records(
        cluster.kafka_bootstrap_servers, topic, count, within=within, fetch_bytes=8 * 1024 * 1024
    )
    out: list[tuple[str, float, datetime]] = []
    for r in records:
        data = json.loads(r.value)["data"]
        completed = datetime.fromisoformat(data["completed_at"])
        out.append((data["correlation_id"], r.timestamp / 1000, completed))
    return out


async def pipeline_run(
    cluster: ClusterEnv, n: int, concurrency: int, log_dir: Path
) -> dict[str, float]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    topic = f"bench.{uuid.uuid4().hex[:8]}.callbacks"
    await make_topic(cluster, topic)
    stack = Stack(
        StackConfig(
            cluster=cluster,
            callback_topic=topic,
            redis_prefix=prefix,
            group=f"bench-{uuid.uuid4().hex[:8]}",
            workers=0,
            operator=False,
            callback_topic_pattern=r"^bench\..+",
            provider_env={
                "CJ_API_QUEUE_HIGH_WATER": str(n * 2),
                "CJ_API_QUEUE_LOW_WATER": str(n),
                "CJ_LOG_LEVEL": "WARNING",
            },
            worker_env={"CJ_WORKER_CONCURRENCY": str(concurrency // 2)},
        ),
        log_dir,
    )
    redis = aioredis.from_url(cluster.redis_url)
    try:
        url = stack.start_api().url
        workers = [stack.start_worker(wait="/readyz") for _ in range(2)]
        peak = 0
        stop_sampling = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop_sampling.is_set():
                depth = sum([await redis.xlen(f"{prefix}requests:{p}") for p in ("high", "normal")])
                peak = max(peak, depth)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            sent: set[str] = set()
            for start in range(0, n, BULK):
                items = [body(topic, i) for i in range(start, min(n, start + BULK))]
                for item in items:
                    item["correlation_id"] = str(uuid.uuid4())
                    sent.add(str(item["correlation_id"]))
                r = await client.post("/api/v1/comparisons", json={"requests": items})
                if r.status_code != 202:
                    raise RuntimeError(f"bulk submit failed: {r.status_code} {r.text[:300]}")
        submitted = time.monotonic()
        events = await read_events(cluster, topic, n, within=600)
        stop_sampling.set()
        await sampler
        finished = time.monotonic()
        ack_p50, ack_p99 = histogram_quantiles(
            [w.url for w in workers], "cj_provider_callback_publish_duration_seconds"
        )
        seen = [cid for cid, _, _ in events]
        latencies = [max(0.0, (appended - done.timestamp()) * 1000) for _, appended, done in events]
        return {
            "events": len(events),
            "lost": len(sent - set(seen)),
            "duplicates": len(seen) - len(set(seen)),
            "submit_s": submitted - started,
            "total_s": finished - started,
            "throughput": len(events) / (finished - started),
            "peak_queued_or_in_flight": peak,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "ack_p50_ms": ack_p50,
            "ack_p99_ms": ack_p99,
        }
    finally:
        stack.stop()
        await delete_redis_keys(cluster, prefix)
        await redis.aclose()
        await delete_topics(cluster.kafka_bootstrap_servers, [topic])


async def floor_run(cluster: ClusterEnv, n: int, concurrency: int) -> dict[str, float]:
    """The same payloads through a bare XREADGROUP -> produce -> XACK loop."""
    topic = f"bench.{uuid.uuid4().hex[:8]}.floor"
    stream = f"bench:{uuid.uuid4().hex[:8]}:floor"
    await make_topic(cluster, topic)
    redis = aioredis.from_url(cluster.redis_url)
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    latencies: list[float] = []
    acks: list[float] = []
    try:
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
        template = json.dumps(body(topic, 0))
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(n):
                pipe.xadd(stream, {"r": template})
            await pipe.execute()
        started = time.monotonic()
        in_flight: set[asyncio.Task[None]] = set()

        async def handle(entry_id: bytes, payload: bytes) -> None:
            answered = time.time()
            value = json.dumps({"answer": "essay_a", "request": json.loads(payload)}).encode()
            sent = time.monotonic()
            metadata = await producer.send_and_wait(topic, value=value, key=entry_id)
            acks.append((time.monotonic() - sent) * 1000)
            latencies.append(max(0.0, metadata.timestamp / 1000 - answered) * 1000)
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, "g", entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()

        read = 0
        while read < n:
            room = concurrency - len(in_flight)
            if room <= 0:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            reply: Any = await redis.xreadgroup("g", "c", {stream: ">"}, count=room, block=100)
            for _, messages in reply or []:
                for entry_id, fields in messages:
                    task = asyncio.create_task(handle(entry_id, fields[b"r"]))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    read += 1
        await asyncio.gather(*in_flight)
        elapsed = time.monotonic() - started
        return {
            "events": len(latencies),
            "throughput": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "ack_p50_ms": percentile(acks, 50),
            "ack_p99_ms": percentile(acks, 99),
        }
    finally:
        await producer.stop()
        await redis.delete(stream)
        await redis.aclose()
        await delete_topics(cluster.kafka_bootstrap_servers, [topic])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="worker concurrency, total over both workers"
    )
    args = parser.parse_args()
    if not is_running():
        print("the local cluster is not running: hack/devcluster up", file=sys.stderr)
        return 2
    cluster = read_env()
    log_dir = tempfile.mkdtemp(prefix="cj-bench-")
    print("process logs:", log_dir)
    pipe = await pipeline_run(cluster, args.requests, args.concurrency, Path(log_dir))
    floor = await floor_run(cluster, args.requests, args.concurrency)
    print(f"requests: {args.requests}, worker concurrency: {args.concurrency} (2 workers)")
    print(
        f"pipeline: {pipe['events']:.0f} events, lost {pipe['lost']:.0f}, duplicates "
        f"{pipe['duplicates']:.0f}; submitted in {pipe['submit_s']:.1f} s, all events in "
        f"{pipe['total_s']:.1f} s = {pipe['throughput']:.0f} events/s; peak queued or in "
        f"flight {pipe['peak_queued_or_in_flight']:.0f}"
    )
    print(
        f"answer -> broker append (pipeline): p50 {pipe['p50_ms']:.1f} ms, "
        f"p99 {pipe['p99_ms']:.1f} ms; answer -> ack (workers' histogram buckets): "
        f"p50 <= {pipe['ack_p50_ms']:.1f} ms, p99 <= {pipe['ack_p99_ms']:.1f} ms"
    )
    print(
        f"floor (raw XREADGROUP -> produce -> XACK): {floor['throughput']:.0f} events/s; "
        f"answer -> broker append p50 {floor['p50_ms']:.1f} ms, p99 {floor['p99_ms']:.1f} ms; "
        f"send -> ack p50 {floor['ack_p50_ms']:.1f} ms, p99 {floor['ack_p99_ms']:.1f} ms"
    )
    ok = pipe["lost"] == 0 and pipe["p99_ms"] < 20
    print("target (none lost, p99 < 20 ms):", "met" if ok else "NOT met")
    return 0 if pipe["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
