"""A real Prometheus scrapes the operator, the provider API and the workers during a run; every
PromQL expression of the dashboard and of the chart's alert rules parses (promtool) and
returns data, and every alert fires.

The processes are the chart's own Deployments run locally (the test plays the kubelet: each
container's command with its rendered environment, see local_release.py), pointed at the
local cluster's Kubernetes API, PostgreSQL, Redis and Kafka. Prometheus (Debian package) runs
with a 1 s scrape and rule interval, targets labelled with the release namespace as the
Prometheus Operator labels pod targets. The run: a CJBatch of the demo essays judged by the
`mock` judge (30 % injected failures, 100 ms latency), a burst of direct API requests to build
a queue (with the bearer token the chart generated; one request without it is refused with
401), one refused request, and for a few seconds a worker whose Kafka is unreachable (so
callback publishing fails). The alert rules are rendered with thresholds every healthy run
crosses (`for: 0s`), so each alert must fire; their real thresholds are values.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from aiokafka import AIOKafkaProducer

from cj_workers.keys import RedisKeys
from common_core import QueuePriority
from deploy.dashboard import all_queries
from tests.integration.deploy.local_release import LocalWorkload, local_workload, rendered_secrets
from tests.support.chart import Obj, one, render
from tests.support.devcluster import REPO_ROOT, ClusterEnv
from tests.support.isolation import unique_name
from tests.support.kafka import delete_topics
from tests.support.kube import kubectl
from tests.support.processes import ManagedProcess, free_port

RATE_INTERVAL = "15s"
SECRETS = {("cj-database", "password"): "unused-with-trust-auth"}


def toolchain(function: str) -> str:
    hack = REPO_ROOT / "hack" / "lib"
    script = f'source "{hack}/common.sh"; source "{hack}/toolchain.sh"; {function}'
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def prometheus() -> tuple[Path, Path]:
    """The prometheus and promtool binaries (Debian package, installed by the toolchain)."""
    server = Path(toolchain("prometheus_bin"))
    promtool = Path(shutil.which("promtool") or server.parent / "promtool")
    assert promtool.exists(), "promtool missing beside prometheus"
    return server, promtool


def promtool_check_rules(promtool: Path, groups: list[dict[str, Any]], path: Path) -> str:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def dashboard_queries(namespace: str) -> list[str]:
    """The dashboard's expressions with Grafana's variables filled in as Grafana would."""
    return [
        q.replace("$__rate_interval", RATE_INTERVAL).replace("$namespace", namespace)
        for q in all_queries()
    ]


class Prom:
    """The HTTP API of the test's Prometheus."""

    def __init__(self, url: str) -> None:
        self.url = url

    def range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Series of a range query (1 s step); raises on a query error."""
        r = httpx.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": "1"},
            timeout=10,
        )
        body = r.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        return {t["scrapeUrl"]: t["health"] for t in body["data"]["activeTargets"]}


def chart_values(
    cluster: ClusterEnv,
    database_url: str,
    redis_prefix: str,
    namespace: str,
    topics: dict[str, str],
    ports: dict[str, int],
    manifest: Path,
) -> dict[str, object]:
    """Chart values pointing the release at the local cluster's services and free ports."""
    db = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    redis = urlsplit(cluster.redis_url)
    rules = "metrics.prometheusRule.alerts"
    return {
        "database.host": db.hostname,
        "database.port": db.port,
        "database.name": db.path.lstrip("/"),
        "database.user": db.username,
        "redis.host": redis.hostname,
        "redis.port": redis.port,
        "redis.database": int(redis.path.lstrip("/") or 0),
        "redis.keyPrefix": redis_prefix,
        "redis.consumerGroup": unique_name("cj-workers-"),
        "kafka.bootstrapServers": cluster.kafka_bootstrap_servers,
        "kafka.topics.names": [topics["callback"], topics["completion"]],
        "kafka.topics.partitions": 1,
        "migrations.mode": "operatorStart",
        "logging.format": "json",
        "operator.watchNamespaces": [namespace],
        "operator.metricsPort": ports["operator_metrics"],
        "operator.livenessPort": ports["operator_liveness"],
        "operator.providerApiUrl": f"http://127.0.0.1:{ports['api']}",
        "operator.settings": {
            "LLM_PROVIDER_CALLBACK_TOPIC": topics["callback"],
            "CJ_OPERATOR_COMPLETION_TOPIC": topics["completion"],
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": topics["dead_letter"],
            "CJ_OPERATOR_CONSUMER_GROUP": unique_name("cj-operator-"),
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.5",
            # The batch monitor also samples the batches-by-phase gauge: every 1.2 s here.
            "BATCH_MONITOR_INTERVAL_MINUTES": "0.02",
        },
        "providerApi.port": ports["api"],
        "worker.metricsPort": ports["worker_0"],
        "worker.concurrency": 2,
        "worker.defaultProvider": "mock",
        "enabledProviders": ["offline", "mock"],
        "worker.settings": {
            "CJ_WORKER_MOCK_ERROR_RATE": "0.3",
            "CJ_WORKER_MOCK_LATENCY_MS": "100",
            "CJ_WORKER_MAX_ATTEMPTS": "1",
            "CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS": "4",
            "CJ_WORKER_RECLAIM_INTERVAL_SECONDS": "1",
            "CJ_MODEL_MANIFEST_PATH": str(manifest),
        },
        "metrics.prometheusRule.enabled": True,
        # Thresholds every run crosses, so each alert must fire during this one.
        f"{rules}.stuckBatch.seconds": 3,
        f"{rules}.stuckBatch.for": "0s",
        f"{rules}.callbackLag.p99Seconds": 0.000001,
        f"{rules}.callbackLag.for": "0s",
        f"{rules}.publishFailures.perSecond": 0,
        f"{rules}.publishFailures.for": "0s",
        f"{rules}.queueDepth.entries": 0,
        f"{rules}.queueDepth.for": "0s",
        f"{rules}.deadLetters.entries": 0,
        f"{rules}.deadLetters.for": "0s",
        f"{rules}.callbackDeadLetters.entries": 0,
        f"{rules}.callbackDeadLetters.for": "0s",
    }


def start(
    workload: LocalWorkload, log_dir: Path, extra: dict[str, str] | None = None
) -> ManagedProcess:
    return ManagedProcess(
        workload.name, workload.argv, {**workload.env, **(extra or {})}, log_dir
    ).start()


def comparison_request(callback_topic: str, i: int) -> dict[str, object]:
    return {
        "user_prompt": "Which essay argues its position better?",
        "essay_a": f"Essay A number {i}: schools should require service because it builds habits.",
        "essay_b": f"Essay B number {i}: service is good but should stay voluntary for students.",
        "callback_topic": callback_topic,
        "correlation_id": str(uuid.uuid4()),
    }


def demo_batch(namespace: str, essays: int = 8, model: str = "mock", per_essay: int = 4) -> Obj:
    """examples/demo-batch.yaml, cut to `essays` essays, judged by the mock judge."""
    batch: Obj = yaml.safe_load((REPO_ROOT / "examples" / "demo-batch.yaml").read_text())
    batch["metadata"] = {"name": unique_name("prom-"), "namespace": namespace}
    batch["spec"]["essays"] = batch["spec"]["essays"][:essays]
    batch["spec"]["judge"] = {"provider": "mock", "model": model}
    batch["spec"]["comparisons"] = {"targetPerEssay": per_essay}
    return batch


def dead_letter_unreadable_entry(cluster: ClusterEnv, redis_prefix: str) -> None:
    """Add an entry that is not a request to the release's normal-priority stream."""

    async def add() -> None:
        client = aioredis.from_url(cluster.redis_url)
        try:
            await client.xadd(RedisKeys(redis_prefix).stream(QueuePriority.NORMAL), {"r": "{"})
        finally:
            await client.aclose()

    asyncio.run(add())


def dead_letter_malformed_callback(cluster: ClusterEnv, topic: str) -> None:
    """Produce a value that is not a callback event to the operator's callback topic."""

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=cluster.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=b"not an event", key=b"prom")
        finally:
            await producer.stop()

    asyncio.run(produce())


@pytest.fixture
def topics(cluster: ClusterEnv) -> Iterator[dict[str, str]]:
    """Callback, completion and dead-letter topic names (huleedu.*, as the API requires);
    the release creates them at start-up, the fixture deletes them afterwards."""
    base = unique_name("huleedu.t")
    names = {
        "callback": f"{base}.comparison_result.v1",
        "completion": f"{base}.completed.v1",
        "dead_letter": f"{base}.comparison_result.v1.dlq",
    }
    yield names
    asyncio.run(delete_topics(cluster.kafka_bootstrap_servers, list(names.values())))


@pytest.mark.timeout(600)
def test_prometheus_scrapes_a_run_and_every_query_and_alert_has_data(
    cluster: ClusterEnv,
    namespace: str,
    database_url: str,
    redis_prefix: str,
    topics: dict[str, str],
    prometheus: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    server, promtool = prometheus
    ports = {
        k: free_port()
        for k in (
            "api",
            "operator_metrics",
            "operator_liveness",
            "worker_0",
            "worker_1",
            "worker_x",
            "prom",
        )
    }
    manifest = tmp_path / "models.json"
    manifest.write_text(
        json.dumps(
            [
                {
                    "provider": "mock",
                    "model": "mock",
                    "input_usd_per_mtok": 3.0,
                    "output_usd_per_mtok": 15.0,
                }
            ]
        )
    )
    objects = render(
        chart_values(cluster, database_url, redis_prefix, namespace, topics, ports, manifest),
        namespace=namespace,
    )
    secrets = {**SECRETS, **rendered_secrets(objects)}  # + the generated API token
    secret = lambda name, key: secrets[(name, key)]  # noqa: E731
    operator = local_workload(one(objects, "Deployment", "-operator"), secret, "operator")
    operator.env["KUBECONFIG"] = cluster.kubeconfig  # in a pod: the in-cluster account
    api = local_workload(one(objects, "Deployment", "-provider-api"), secret, "provider-api")
    worker = one(objects, "Deployment", "-worker")
    workers = [local_workload(worker, secret, f"worker-{i}") for i in range(2)]

    # Rules: the chart's PrometheusRule, and the dashboard's queries as recording rules,
    # both through promtool (parse and type-check every expression).
    rule = one(objects, "PrometheusRule")
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    out = promtool_check_rules(promtool, rule["spec"]["groups"], tmp_path / "rules.yaml")
    assert f"SUCCESS: {len(alerts)} rules found" in out
    queries = dashboard_queries(namespace)
    recorded = [{"record": f"cj_dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    out = promtool_check_rules(
        promtool, [{"name": "dashboard", "rules": recorded}], tmp_path / "dashboard-rules.yaml"
    )
    assert f"SUCCESS: {len(queries)} rules found" in out

    logs = tmp_path / "logs"
    procs: list[ManagedProcess] = []
    try:
        procs.append(start(api, logs))
        procs[-1].wait_http_ok(f"http://127.0.0.1:{ports['api']}/healthz", timeout=60)
        for i, w in enumerate(workers):
            procs.append(start(w, logs, {"CJ_WORKER_METRICS_PORT": str(ports[f"worker_{i}"])}))
            procs[-1].wait_http_ok(f"http://127.0.0.1:{ports[f'worker_{i}']}/healthz", timeout=60)
        procs.append(start(operator, logs))
        procs[-1].wait_http_ok(f"http://127.0.0.1:{ports['operator_liveness']}/healthz", timeout=90)

        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(tmp_path / "rules.yaml")],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{p}" for p in job_ports],
                            "labels": {"namespace": namespace},
                        }
                    ],
                }
                for job, job_ports in {
                    "cj-operator": [ports["operator_metrics"]],
                    "cj-provider-api": [ports["api"]],
                    "cj-worker": [ports["worker_0"], ports["worker_1"], ports["worker_x"]],
                }.items()
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        check = subprocess.run(
            [str(promtool), "check", "config", str(tmp_path / "prometheus.yml")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        prom_url = f"http://127.0.0.1:{ports['prom']}"
        procs.append(
            ManagedProcess(
                "prometheus",
                [
                    str(server),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{ports['prom']}",
                ],
                {},
                logs,
            ).start()
        )
        procs[-1].wait_http_ok(f"{prom_url}/-/ready", timeout=60)
        prom = Prom(prom_url)
        run_start = time.time()

        # A worker whose Kafka is unreachable: it judges, fails to publish, and its entries
        # go back to the others once its visibility timeout passes.
        unreachable = LocalWorkload(
            "worker-unreachable-kafka",
            workers[0].argv,
            {
                **workers[0].env,
                "CJ_WORKER_METRICS_PORT": str(ports["worker_x"]),
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "CJ_BOOTSTRAP_TOPICS_ON_START": "false",
                "CJ_WORKER_CONCURRENCY": "1",
                "CJ_WORKER_CONSUMER_NAME": "worker-unreachable-kafka",
            },
        )
        bad = start(unreachable, logs)
        procs.append(bad)
        bad.wait_http_ok(f"http://127.0.0.1:{ports['worker_x']}/healthz", timeout=60)
        # Every target scraped once before the run, so its counters have a baseline sample
        # (a batch can finish within the first scrape interval).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = prom.targets_up()
            if len(health) == 5 and set(health.values()) == {"up"}:
                break
            time.sleep(0.5)
        assert set(prom.targets_up().values()) == {"up"}, prom.targets_up()

        api_url = f"http://127.0.0.1:{ports['api']}"
        token = api.env["CJ_API_AUTH_TOKEN"]  # the chart's generated Secret, as in a pod
        assert token == operator.env["CJ_OPERATOR_PROVIDER_API_TOKEN"]
        anonymous = httpx.post(
            f"{api_url}/api/v1/comparison", json=comparison_request(topics["callback"], 0)
        )
        assert anonymous.status_code == 401, anonymous.text
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client:
            refused = client.post(
                "/api/v1/comparison", json={"user_prompt": "x", "essay_a": "a", "essay_b": "b"}
            )
            assert refused.status_code == 400, refused.text
            for i in range(40):
                r = client.post(
                    "/api/v1/comparison", json=comparison_request(topics["callback"], i)
                )
                assert r.status_code == 202, r.text

        # One unreadable entry in the request stream: a worker moves it to the dead-letter
        # stream (CJWorkerDeadLetters).
        dead_letter_unreadable_entry(cluster, redis_prefix)
        # One malformed callback event: the operator moves it to its dead-letter topic
        # (CJCallbackDeadLetters).
        dead_letter_malformed_callback(cluster, topics["callback"])

        batch = demo_batch(namespace)
        kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(batch))
        name = batch["metadata"]["name"]
        deadline = time.monotonic() + 240
        phase = ""
        while time.monotonic() < deadline:
            status = json.loads(
                kubectl(cluster, "get", "cjbatch", name, "-n", namespace, "-o", "json")
            ).get("status", {})
            phase = status.get("phase", "")
            if phase in ("Completed", "Failed") or phase.upper() in ("COMPLETED", "FAILED"):
                break
            for p in procs:
                assert p.alive(), f"{p.name} exited:\n{p.tail()}"
            time.sleep(1)
        assert phase.upper() == "COMPLETED", f"batch phase {phase!r}:\n{procs[-1].tail()}"
        bad.stop()

        # A batch whose judge takes 6 s per comparison: for a while it waits and no callback
        # arrives at all, which is what CJBatchStuck (window 3 s here) must notice.
        slow = demo_batch(namespace, essays=3, model="mock?latency_ms=6000", per_essay=1)
        kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(slow))
        deadline = time.monotonic() + 60
        stuck: list[dict[str, Any]] = []
        while not stuck and time.monotonic() < deadline:
            time.sleep(1)
            stuck = prom.range(
                'ALERTS{alertname="CJBatchStuck", alertstate="firing"}', run_start, time.time()
            )
        assert stuck, "CJBatchStuck did not fire while a batch waited without callbacks"
        time.sleep(5)  # a few more scrapes and rule evaluations after the run
        run_end = time.time()

        health = prom.targets_up()
        assert len(health) == 5
        missing = [q for q in queries if not prom.range(q, run_start, run_end)]
        assert not missing, "dashboard queries without data:\n" + "\n".join(missing)
        for alert in alerts:
            assert prom.range(alert["expr"], run_start, run_end), f"no data: {alert['expr']}"
            firing = prom.range(
                f'ALERTS{{alertname="{alert["alert"]}", alertstate="firing"}}', run_start, run_end
            )
            assert firing, f"{alert['alert']} never fired"
    finally:
        for p in reversed(procs):
            p.stop()
