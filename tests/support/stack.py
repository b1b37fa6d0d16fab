"""The system as local processes: provider API, workers and the operator.

The local cluster runs no pods, so integration and end-to-end tests, benchmarks and the demo
start the project's own console scripts here, pointed at the cluster's PostgreSQL, Redis, Kafka
and API server. `StackConfig` says which processes run (an API, N workers, the operator, or an
operator that uses an API running elsewhere) and names every isolation knob (topics, Redis key
prefix, consumer groups, database, watched namespace), so several stacks share one cluster
without seeing each other's work.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from cj_workers.keys import RedisKeys
from cj_workers.queue import RequestQueue
from common_core import LLMProviderType
from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl
from tests.support.processes import ManagedProcess, free_port

BIN = Path(sys.executable).parent
ANY_TOPIC = r"^[A-Za-z0-9._-]+$"
"""Callback topic pattern that accepts every legal Kafka topic name."""
ALL_PROVIDERS = tuple(p.value for p in LLMProviderType)
"""CJ_ENABLED_PROVIDERS of a test stack: every judge, the test judges included."""


@dataclass(frozen=True)
class StackConfig:
    """Which processes one stack runs, where they connect and what they may touch.

    - `redis_prefix` and `group` isolate the provider side: Redis keys, the stream consumer
      group (`<group>-workers`), consumer names (`<group>-<worker name>`) and the operator's
      Kafka consumer group (`<group>-operator`).
    - The operator needs `completion_topic` and `dead_letter_topic`; `namespace` None makes it
      watch every namespace; `database_url` None means the cluster's own database.
    - `start()` runs an API unless `provider_api_url` names one running elsewhere, `workers`
      workers, and the operator when `operator` is true.
    - `create_topics` false: the processes create no topics (the test made them).
    - The API allows `callback_topic` and topics matching `callback_topic_pattern`, and refuses
      the completion and dead-letter topics.
    - `enabled_providers` is the provider side's CJ_ENABLED_PROVIDERS: every judge by
      default, as tests and benchmarks use the `mock` and `simulated` judges (off in the
      processes' own default); None leaves the processes' default (`make demo` does).
    - `provider_env` adds settings of the API and the workers (e.g. the judge's), `worker_env`
      of the workers only, `operator_env` of the operator.
    """

    cluster: ClusterEnv
    callback_topic: str
    redis_prefix: str
    group: str
    completion_topic: str | None = None
    dead_letter_topic: str | None = None
    database_url: str | None = None
    namespace: str | None = None
    workers: int = 2
    operator: bool = True
    provider_api_url: str | None = None
    create_topics: bool = True
    callback_topic_pattern: str = ANY_TOPIC
    enabled_providers: tuple[str, ...] | None = ALL_PROVIDERS
    provider_env: Mapping[str, str] = field(default_factory=dict)
    worker_env: Mapping[str, str] = field(default_factory=dict)
    operator_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        """The topics the provider side bootstraps: callback, then completion if any."""
        return [t for t in (self.callback_topic, self.completion_topic) if t]

    def common_environ(self) -> dict[str, str]:
        """What every process of the stack gets: the cluster's addresses, JSON logs."""
        return {
            **self.cluster.as_environ(),
            "DATABASE_URL": self.database_url or self.cluster.database_url,
            "CJ_LOG_FORMAT": "json",
            "CJ_OPERATOR_LOG_FORMAT": "json",
        }

    def provider_environ(self) -> dict[str, str]:
        """Settings shared by the provider API and the workers (cj_workers.settings)."""
        return {
            **self.common_environ(),
            "CJ_REDIS_KEY_PREFIX": self.redis_prefix,
            "CJ_STREAM_CONSUMER_GROUP": f"{self.group}-workers",
            "CJ_KAFKA_TOPICS": json.dumps(self.topics),
            "CJ_KAFKA_TOPIC_PARTITIONS": "3",
            "CJ_BOOTSTRAP_TOPICS_ON_START": str(self.create_topics).lower(),
            "CJ_API_CALLBACK_TOPICS": json.dumps([self.callback_topic]),
            "CJ_API_CALLBACK_TOPIC_PATTERN": self.callback_topic_pattern,
            "CJ_API_REFUSED_CALLBACK_TOPICS": json.dumps(
                [t for t in (self.completion_topic, self.dead_letter_topic) if t]
            ),
            **(
                {}
                if self.enabled_providers is None
                else {"CJ_ENABLED_PROVIDERS": json.dumps(list(self.enabled_providers))}
            ),
            **self.provider_env,
        }

    def operator_environ(self, provider_api_url: str, metrics_port: int) -> dict[str, str]:
        """Settings of the operator (cj_operator.settings)."""
        assert self.completion_topic and self.dead_letter_topic, "the operator needs its topics"
        return {
            **self.common_environ(),
            "LLM_PROVIDER_CALLBACK_TOPIC": self.callback_topic,
            "CJ_OPERATOR_COMPLETION_TOPIC": self.completion_topic,
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "CJ_OPERATOR_CONSUMER_GROUP": f"{self.group}-operator",
            "CJ_OPERATOR_CREATE_TOPICS": str(self.create_topics).lower(),
            "CJ_OPERATOR_PROVIDER_API_URL": provider_api_url,
            "CJ_OPERATOR_METRICS_PORT": str(metrics_port),
            "CJ_OPERATOR_METRICS_HOST": "127.0.0.1",
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.5",
            **self.operator_env,
        }

    def operator_argv(self, health_port: int, *, standalone: bool = True) -> list[str]:
        """`kopf run` of the operator's handlers for the configured namespace, standalone
        (`standalone` false: peering, which needs POD_ID and a ClusterKopfPeering)."""
        scope = ["--namespace", self.namespace] if self.namespace else ["--all-namespaces"]
        return [
            str(BIN / "kopf"),
            "run",
            "-m",
            "cj_operator.handlers",
            *(["--standalone"] if standalone else []),
            *scope,
            f"--liveness=http://127.0.0.1:{health_port}/healthz",
        ]


class Stack:
    """The processes of one StackConfig: started in dependency order, stopped in reverse.

    Each process logs to `<log_dir>/<name>.log`; its `url` is its HTTP base URL (the API's, a
    worker's or the operator's metrics server). Ports are chosen once, so a restarted operator
    keeps its URLs.
    """

    def __init__(self, config: StackConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.api_port = free_port()
        self.operator_metrics_port = free_port()
        self.operator_health_port = free_port()
        self.api: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.operator: ManagedProcess | None = None
        self.operator_starts = 0

    @property
    def api_url(self) -> str:
        """Base URL of the provider API the stack's operator and tests use."""
        return self.config.provider_api_url or f"http://127.0.0.1:{self.api_port}"

    @property
    def operator_metrics_url(self) -> str:
        """Base URL of the operator's metrics server (its page is `<url>/metrics`)."""
        return f"http://127.0.0.1:{self.operator_metrics_port}"

    def start_api(self, *, wait: bool = True, **env: str) -> ManagedProcess:
        """Start the provider API (settings `env` added) and wait until /readyz answers
        (`wait` false: do not wait; `wait_api` does)."""
        assert self.api is None, "one provider API per stack"
        environ = {
            **self.config.provider_environ(),
            "CJ_API_HOST": "127.0.0.1",
            "CJ_API_PORT": str(self.api_port),
            **env,
        }
        argv = [str(BIN / "cj-provider-api")]
        self.api = ManagedProcess("provider-api", argv, environ, self.log_dir, url=self.api_url)
        self.api.start()
        if wait:
            self.wait_api()
        return self.api

    def wait_api(self, timeout: float = 60) -> None:
        """Wait until the API's /readyz answers 2xx."""
        assert self.api is not None, "no provider API started"
        self.api.wait_http_ok(f"{self.api_url}/readyz", timeout=timeout)

    def start_worker(
        self, name: str | None = None, *, wait: str | None = "/healthz", **env: str
    ) -> ManagedProcess:
        """Start a worker (default name `worker-<n>`, settings `env` added); wait until the
        path `wait` of its metrics server answers 2xx (None: do not wait)."""
        name = name or f"worker-{len(self.workers)}"
        port = free_port()
        environ = {
            **self.config.provider_environ(),
            "CJ_WORKER_CONSUMER_NAME": f"{self.config.group}-{name}",
            "CJ_WORKER_METRICS_HOST": "127.0.0.1",
            "CJ_WORKER_METRICS_PORT": str(port),
            **self.config.worker_env,
            **env,
        }
        url = f"http://127.0.0.1:{port}"
        worker = ManagedProcess(name, [str(BIN / "cj-worker")], environ, self.log_dir, url=url)
        self.workers.append(worker.start())
        if wait is not None:
            worker.wait_http_ok(f"{url}{wait}", timeout=60)
        return worker

    def start_operator(self, *, wait: bool = True, **env: str) -> ManagedProcess:
        """Start the operator (again, after a stop or kill; settings `env` added) and wait until
        its liveness endpoint answers (`wait` false: do not wait; `wait_operator` does). The
        first run logs to operator.log, the n-th to operator-<n>.log."""
        assert self.operator is None or not self.operator.alive(), "the operator is running"
        self.operator_starts += 1
        name = "operator" if self.operator_starts == 1 else f"operator-{self.operator_starts}"
        environ = {
            **self.config.operator_environ(self.api_url, self.operator_metrics_port),
            **env,
        }
        argv = self.config.operator_argv(self.operator_health_port)
        self.operator = ManagedProcess(
            name, argv, environ, self.log_dir, url=self.operator_metrics_url
        )
        self.operator.start()
        if wait:
            self.wait_operator()
        return self.operator

    def wait_operator(self, timeout: float = 90) -> None:
        """Wait until the operator's liveness endpoint answers 2xx."""
        assert self.operator is not None, "no operator started"
        self.operator.wait_http_ok(
            f"http://127.0.0.1:{self.operator_health_port}/healthz", timeout=timeout
        )

    def start(self) -> Stack:
        """API (which bootstraps the topics) unless one runs elsewhere, the workers, then the
        operator if configured; returns self."""
        if self.config.provider_api_url is None:
            self.start_api()
        for _ in range(self.config.workers):
            self.start_worker()
        if self.config.operator:
            self.start_operator()
        return self

    def processes(self) -> list[ManagedProcess]:
        """Every process started, operator first, then workers, then the API."""
        return [p for p in [self.operator, *reversed(self.workers), self.api] if p is not None]

    def stop(self) -> None:
        """SIGTERM every process, operator first; SIGKILL what does not stop in time."""
        for proc in self.processes():
            proc.stop()

    def logs(self, lines: int = 60) -> str:
        """The tail of every process's log, for assertion messages."""
        return "\n".join(f"--- {p.name} ---\n{p.tail(lines)}" for p in self.processes())

    def queue(self, redis: aioredis.Redis) -> RequestQueue:
        """The workers' request queue in Redis, as the stack's processes see it."""
        return RequestQueue(
            redis, RedisKeys(self.config.redis_prefix), f"{self.config.group}-workers"
        )


async def isolated_stack_config(
    cluster: ClusterEnv, label: str, run_id: str, provider_env: Mapping[str, str] | None = None
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
        provider_env=provider_env or {},
    )
