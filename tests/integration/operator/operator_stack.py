"""Run the operator (kopf run), the provider API and a worker as real local processes.

The provider side is helper A's `cj_workers` (API + worker with the `mock` judge); the operator
is `kopf run -m cj_operator.handlers --standalone --namespace=<test namespace>`, against the
real kube-apiserver, PostgreSQL and Kafka of hack/devcluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from aiokafka import AIOKafkaConsumer
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL
from common_core import CJAssessmentCompletedV1, EventEnvelope
from tests.support.devcluster import ClusterEnv
from tests.support.processes import ManagedProcess, free_port

Completion = EventEnvelope[CJAssessmentCompletedV1]


@dataclass
class ProviderSide:
    """A provider API and one worker sharing a Redis prefix."""

    cluster: ClusterEnv
    prefix: str
    log_dir: Path
    url: str = ""
    processes: list[ManagedProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.cluster.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.cluster.kafka_bootstrap_servers,
            "CJ_REDIS_KEY_PREFIX": self.prefix,
            "CJ_BOOTSTRAP_TOPICS_ON_START": "false",
            "CJ_API_CALLBACK_TOPIC_PATTERN": r"^test\..+",
            "CJ_LOG_FORMAT": "json",
            **extra,
        }

    def start(self) -> ProviderSide:
        port = free_port()
        api = ManagedProcess(
            "provider-api", ["-m", "cj_workers.api"], self.env(CJ_API_PORT=str(port)), self.log_dir
        ).start()
        self.processes.append(api)
        self.url = f"http://127.0.0.1:{port}"
        api.wait_http_ok(f"{self.url}/readyz", timeout=60)
        metrics = free_port()
        worker = ManagedProcess(
            "worker",
            ["-m", "cj_workers.worker"],
            self.env(
                CJ_WORKER_METRICS_PORT=str(metrics),
                CJ_WORKER_CONSUMER_NAME="worker-1",
                CJ_WORKER_CONCURRENCY="32",
                CJ_WORKER_DEFAULT_PROVIDER="mock",
                # Slow mock answers still running at the end are not worth waiting for.
                CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS="2",
            ),
            self.log_dir,
        ).start()
        self.processes.append(worker)
        worker.wait_http_ok(f"http://127.0.0.1:{metrics}/healthz", timeout=60)
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


@dataclass
class OperatorProcess:
    """One `kopf run` of the operator for one test namespace."""

    cluster: ClusterEnv
    namespace: str
    database_url: str
    provider_url: str
    callback_topic: str
    completion_topic: str
    dead_letter_topic: str
    consumer_group: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: ManagedProcess | None = None
    metrics_url: str = ""
    starts: int = 0

    def start(self) -> OperatorProcess:
        metrics_port, liveness_port = free_port(), free_port()
        env = {
            **self.cluster.as_environ(),
            "DATABASE_URL": self.database_url,
            "CJ_OPERATOR_PROVIDER_API_URL": self.provider_url,
            "LLM_PROVIDER_CALLBACK_TOPIC": self.callback_topic,
            "CJ_OPERATOR_COMPLETION_TOPIC": self.completion_topic,
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "CJ_OPERATOR_CONSUMER_GROUP": self.consumer_group,
            "CJ_OPERATOR_CREATE_TOPICS": "false",
            "CJ_OPERATOR_METRICS_PORT": str(metrics_port),
            "CJ_OPERATOR_METRICS_HOST": "127.0.0.1",
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.3",
            "BATCH_MONITOR_INTERVAL_MINUTES": "0.05",
            "CJ_OPERATOR_LOG_FORMAT": "json",
            **self.extra_env,
        }
        self.starts += 1
        self.proc = ManagedProcess(
            f"operator-{self.starts}",
            [
                "-m",
                "kopf",
                "run",
                "-m",
                "cj_operator.handlers",
                "--standalone",
                f"--namespace={self.namespace}",
                f"--liveness=http://127.0.0.1:{liveness_port}/healthz",
            ],
            env,
            self.log_dir,
        ).start()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.proc.wait_http_ok(f"http://127.0.0.1:{liveness_port}/healthz", timeout=90)
        return self

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc else None

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def tail(self) -> str:
        return self.proc.tail(80) if self.proc else "(not started)"

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the operator's /metrics (0 when absent)."""
        import re

        text = httpx.get(self.metrics_url, timeout=5).text
        for m in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
            if dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
                return float(m.group(2))
        return 0.0


class Batches:
    """CJBatch objects of one namespace on the real API server."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        self.custom = k8s_client.CustomObjectsApi(api)
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "CJBatch",
            "metadata": {"name": name},
            "spec": spec,
        }
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, body
            ),
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION, self.namespace, PLURAL, name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )

    def wait_gone(self, name: str, operator: OperatorProcess, within: float = 60.0) -> None:
        """Poll until the object no longer exists (its finalizer released)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.get(name) is None:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} still exists after {within} s\n{operator.tail()}")

    def status(self, name: str) -> dict[str, Any]:
        obj = self.get(name) or {}
        return cast(dict[str, Any], obj.get("status") or {})

    def events(self, name: str) -> list[str]:
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [e.reason or "" for e in found.items]

    def wait(
        self,
        name: str,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        operator: OperatorProcess,
        within: float = 90.0,
    ) -> dict[str, Any]:
        """Poll the object until `check(object)` holds; AssertionError with the log otherwise."""
        deadline = time.monotonic() + within
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.get(name)
            if last is not None and check(last):
                return last
            if operator.proc is not None and not operator.proc.alive():
                raise AssertionError(f"operator exited waiting for {what}:\n{operator.tail()}")
            time.sleep(0.2)
        status = (last or {}).get("status")
        raise AssertionError(f"no {what} after {within} s; status={status}\n{operator.tail()}")


def phase(obj: dict[str, Any]) -> str | None:
    return cast(str | None, (obj.get("status") or {}).get("phase"))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return cast(dict[str, Any], c)
    return {}


async def completions(
    cluster: ClusterEnv, topic: str, at_least: int, settle: float = 2.0, within: float = 60.0
) -> list[Completion]:
    """Completion events on `topic` from the start: wait for `at_least`, then `settle` s more."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=cluster.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Completion] = []
    try:
        deadline = time.monotonic() + within
        while len(found) < at_least and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=300)
            found += [Completion.model_validate_json(r.value) for rs in polled.values() for r in rs]
        end = time.monotonic() + settle
        while time.monotonic() < end:
            polled = await consumer.getmany(timeout_ms=200)
            found += [Completion.model_validate_json(r.value) for rs in polled.values() for r in rs]
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return found
