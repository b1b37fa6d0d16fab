"""The whole system as local processes: provider API, workers and the operator.

The local cluster runs no pods, so end-to-end tests, benchmarks and the demo start the
project's own commands here, pointed at the cluster's PostgreSQL, Redis, Kafka and API server.
`StackConfig` names every isolation knob (topics, Redis key prefix, consumer groups, database,
watched namespace), so several stacks can share one cluster without seeing each other's work.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl
from tests.support.processes import ManagedProcess, free_port

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class StackConfig:
    """Where one stack's processes connect and what they may touch.

    `namespace` None makes the operator watch every namespace. `judge_env` adds worker
    settings (e.g. CJ_WORKER_MOCK_ERROR_RATE).
    """

    cluster: ClusterEnv
    database_url: str
    callback_topic: str
    completion_topic: str
    dead_letter_topic: str
    redis_prefix: str
    group: str
    namespace: str | None
    workers: int = 2
    api_port: int = field(default_factory=free_port)
    operator_health_port: int = field(default_factory=free_port)
    operator_metrics_port: int = field(default_factory=free_port)
    worker_metrics_ports: tuple[int, ...] = ()
    judge_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _common_env(self) -> dict[str, str]:
        return {
            **self.cluster.as_environ(),
            "DATABASE_URL": self.database_url,
            "CJ_LOG_FORMAT": "json",
            "CJ_OPERATOR_LOG_FORMAT": "json",
        }

    def provider_env(self) -> dict[str, str]:
        """Settings shared by the provider API and the workers (cj_workers.settings)."""
        topics = f'["{self.callback_topic}", "{self.completion_topic}"]'
        return {
            **self._common_env(),
            "CJ_REDIS_KEY_PREFIX": self.redis_prefix,
            "CJ_STREAM_CONSUMER_GROUP": f"{self.group}-workers",
            "CJ_KAFKA_TOPICS": topics,
            "CJ_KAFKA_TOPIC_PARTITIONS": "3",
            "CJ_API_CALLBACK_TOPIC_PATTERN": r"^[A-Za-z0-9._-]+$",
            **self.judge_env,
        }

    def operator_env(self) -> dict[str, str]:
        """Settings of the operator (cj_operator.settings)."""
        return {
            **self._common_env(),
            "LLM_PROVIDER_CALLBACK_TOPIC": self.callback_topic,
            "CJ_OPERATOR_COMPLETION_TOPIC": self.completion_topic,
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "CJ_OPERATOR_CONSUMER_GROUP": f"{self.group}-operator",
            "CJ_OPERATOR_PROVIDER_API_URL": self.api_url,
            "CJ_OPERATOR_METRICS_PORT": str(self.operator_metrics_port),
            "CJ_OPERATOR_METRICS_HOST": "127.0.0.1",
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.5",
        }

    def operator_argv(self) -> list[str]:
        scope = ["--namespace", self.namespace] if self.namespace else ["--all-namespaces"]
        return [
            str(BIN / "kopf"),
            "run",
            "-m",
            "cj_operator.handlers",
            "--standalone",
            *scope,
            f"--liveness=http://127.0.0.1:{self.operator_health_port}/healthz",
        ]


class Stack:
    """The processes of one StackConfig: start in dependency order, stop in reverse."""

    def __init__(self, config: StackConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.api: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.operator: ManagedProcess | None = None

    def start_api(self) -> ManagedProcess:
        env = {
            **self.config.provider_env(),
            "CJ_API_HOST": "127.0.0.1",
            "CJ_API_PORT": str(self.config.api_port),
        }
        self.api = ManagedProcess("provider-api", [str(BIN / "cj-provider-api")], env, self.log_dir)
        self.api.start().wait_http_ok(f"{self.config.api_url}/readyz", timeout=60)
        return self.api

    def start_worker(self, index: int) -> ManagedProcess:
        ports = self.config.worker_metrics_ports
        env = {
            **self.config.provider_env(),
            "CJ_WORKER_CONSUMER_NAME": f"{self.config.group}-w{index}",
            "CJ_WORKER_METRICS_HOST": "127.0.0.1",
            "CJ_WORKER_METRICS_PORT": str(ports[index] if index < len(ports) else free_port()),
        }
        worker = ManagedProcess(f"worker-{index}", [str(BIN / "cj-worker")], env, self.log_dir)
        self.workers.append(worker.start())
        return worker

    def start_operator(self) -> ManagedProcess:
        self.operator = ManagedProcess(
            "operator", self.config.operator_argv(), self.config.operator_env(), self.log_dir
        )
        self.operator.start().wait_http_ok(
            f"http://127.0.0.1:{self.config.operator_health_port}/healthz", timeout=90
        )
        return self.operator

    def start(self) -> Stack:
        """API (which bootstraps the topics), workers, then the operator; returns self."""
        self.start_api()
        for i in range(self.config.workers):
            self.start_worker(i)
        self.start_operator()
        return self

    def stop(self) -> None:
        """SIGTERM every process, operator first; SIGKILL what does not stop in time."""
        for proc in [self.operator, *self.workers, self.api]:
            if proc is not None:
                proc.stop()

    def logs(self) -> str:
        """The tail of every process's log, for assertion messages."""
        procs = [p for p in [self.operator, self.api, *self.workers] if p is not None]
        return "\n".join(f"--- {p.name} ---\n{p.tail(40)}" for p in procs)


async def isolated_stack_config(
    cluster: ClusterEnv, label: str, run_id: str, judge_env: dict[str, str] | None = None
) -> StackConfig:
    """A StackConfig of its own for a benchmark run: creates namespace `cj-<label>-<run_id>`
    and database `cj_<label>_<run_id>` (both left in place for inspection); topics, Redis
    prefix and consumer groups carry the same label and run id. `label` is lower-case
    letters only."""
    namespace = f"cj-{label}-{run_id}"
    kubectl(cluster, "create", "namespace", namespace)
    db_name = f"cj_{label}_{run_id}"
    server = cluster.database_url.rsplit("/", 1)[0]
    admin = await asyncpg.connect(server.replace("+asyncpg", "") + "/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        await admin.close()
    return StackConfig(
        cluster=cluster,
        database_url=f"{server}/{db_name}",
        callback_topic=f"{label}.{run_id}.callbacks",
        completion_topic=f"{label}.{run_id}.completed",
        dead_letter_topic=f"{label}.{run_id}.callbacks.dlq",
        redis_prefix=f"cj:{label}:{run_id}:",
        group=namespace,
        namespace=namespace,
        judge_env=judge_env or {},
    )
