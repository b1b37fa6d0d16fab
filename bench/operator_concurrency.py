"""Many CJBatches at once through the whole system (not run by make test).

    .venv/bin/python -m bench.operator_concurrency                      # 1,000 batches
    .venv/bin/python -m bench.operator_concurrency --batches 200 --essays 12

Creates `--batches` CJBatches of `--essays` short essays each (mock judge, `--per-essay`
comparisons per essay targeted) in one namespace of the local cluster, where one operator, the
provider API and two workers run as processes (the same stack as the end-to-end tests), and
waits until every batch is terminal. Prints:

- creation time and rate (objects accepted by the kube-apiserver per second);
- time from the first creation to the last batch terminal, batches and comparisons per second;
- phases at the end (every batch should be Completed);
- the operator's peak resident memory (MiB, sampled from /proc every poll);
- from the operator's /metrics: callback-to-status latency p50/p99 (from histogram buckets,
  so an upper bound of the bucket holding the quantile), status patches and their rate,
  callbacks by outcome, comparisons submitted by outcome, fit time p99.

Everything is left in place for inspection (namespace and database `cj-conc-<run id>`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL
from tests.support import devcluster
from tests.support.cjbatches import TERMINAL, manifest
from tests.support.kube import install_cjbatch_crd
from tests.support.metrics import bucket_quantile, scrape
from tests.support.stack import Stack, isolated_stack_config

WORDS = [
    "school",
    "homework",
    "sport",
    "music",
    "friends",
    "teacher",
    "library",
    "science",
    "history",
    "reason",
    "example",
    "because",
    "however",
    "therefore",
    "although",
    "community",
    "future",
    "important",
    "believe",
    "students",
]


def _essay(batch: int, index: int) -> str:
    """A short essay whose length (and so the mock judge's view) differs per index."""
    words = [WORDS[(batch + index * 7 + k) % len(WORDS)] for k in range(30 + 10 * index)]
    return " ".join(words).capitalize() + "."


def _body(name: str, batch: int, essays: int, per_essay: int) -> dict[str, Any]:
    return manifest(
        name,
        {
            "assignment": {"prompt": "Should students have homework every day?"},
            "judge": {"provider": "mock"},
            "comparisons": {"targetPerEssay": per_essay},
            "essays": [{"id": f"e{i}", "text": _essay(batch, i)} for i in range(essays)],
        },
    )


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--essays", type=int, default=6)
    parser.add_argument("--per-essay", type=int, default=4)
    parser.add_argument("--create-threads", type=int, default=8)
    parser.add_argument("--mock-latency-ms", type=float, default=0.0)
    parser.add_argument("--within", type=float, default=3600.0, help="give up after (s)")
    args = parser.parse_args()

    if not devcluster.is_running():
        devcluster.up()
    cluster = devcluster.read_env()
    install_cjbatch_crd(cluster)
    config = await isolated_stack_config(
        cluster,
        "conc",
        uuid.uuid4().hex[:8],
        provider_env={"CJ_WORKER_MOCK_LATENCY_MS": str(args.mock_latency_ms)},
    )
    namespace = config.namespace
    assert namespace is not None
    api = k8s_config.new_client_from_config(config_file=cluster.kubeconfig)
    custom = k8s_client.CustomObjectsApi(api)
    print(
        f"{args.batches} batches x {args.essays} essays, {args.per_essay} comparisons per "
        f"essay targeted, mock judge ({args.mock_latency_ms} ms); namespace {namespace}",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(config, Path(logs))
        try:
            stack.start()
            assert stack.operator is not None
            operator_pid = stack.operator.pid
            peak_rss = _rss_mib(operator_pid)
            before = scrape(stack.operator_metrics_url)

            def create(i: int) -> None:
                custom.create_namespaced_custom_object(
                    API_GROUP,
                    API_VERSION,
                    namespace,
                    PLURAL,
                    _body(f"b{i:05d}", i, args.essays, args.per_essay),
                )

            started = time.monotonic()
            with ThreadPoolExecutor(args.create_threads) as pool:
                list(pool.map(create, range(args.batches)))
            created = time.monotonic() - started
            print(f"created {args.batches} in {created:.1f} s", flush=True)

            phases: Counter[str] = Counter()
            submitted = 0
            last_report = 0.0
            while time.monotonic() - started < args.within:
                listed: Any = custom.list_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL
                )
                items = listed["items"]
                phases = Counter(i.get("status", {}).get("phase", "-") for i in items)
                submitted = sum(i.get("status", {}).get("submitted", 0) for i in items)
                peak_rss = max(peak_rss, _rss_mib(operator_pid))
                done = sum(phases[p] for p in TERMINAL)
                if time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    elapsed = last_report - started
                    print(f"  {elapsed:6.0f} s  {dict(phases)}  rss {peak_rss:.0f} MiB", flush=True)
                if done == args.batches:
                    break
                await asyncio.sleep(5.0)
            wall = time.monotonic() - started
            after = scrape(stack.operator_metrics_url)
        finally:
            stack.stop()

    latency = after.buckets("cj_operator_callback_to_status_latency_seconds")
    fit = after.buckets("cj_operator_fit_duration_seconds")
    counted = before.counters()
    # Increases during the run (as Counter subtraction: what did not grow is left out).
    counters = {
        k: grown for k, v in after.counters().items() if (grown := v - counted.get(k, 0.0)) > 0
    }
    patches = sum(v for k, v in counters.items() if k.startswith("cj_operator_status_patches"))
    done = sum(phases[p] for p in TERMINAL)
    print()
    print(f"| batches terminal | {done} of {args.batches} |")
    print(f"| phases | {dict(phases)} |")
    print(f"| create (kube-apiserver) | {created:.1f} s, {args.batches / created:.0f}/s |")
    print(f"| first create -> last terminal | {wall:.0f} s |")
    print(f"| batches/s, comparisons/s | {done / wall:.1f}, {submitted / wall:.0f} |")
    print(f"| comparisons submitted | {submitted} |")
    print(f"| operator peak RSS | {peak_rss:.0f} MiB |")
    p50, p99 = bucket_quantile(latency, 0.5), bucket_quantile(latency, 0.99)
    print(f"| callback -> status latency p50 / p99 (bucket bound) | <= {p50} s / <= {p99} s |")
    print(f"| fit time p99 (bucket bound) | <= {bucket_quantile(fit, 0.99)} s |")
    print(f"| status patches | {patches:.0f} ({patches / wall:.1f}/s) |")
    for key in sorted(counters):
        if key.startswith(("cj_operator_callbacks_total", "cj_operator_comparisons_submitted")):
            print(f"| {key} | {counters[key]:.0f} |")
    return 0 if done == args.batches else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
