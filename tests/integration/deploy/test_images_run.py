"""Each image `make images` built runs what the chart runs in it and serves its health endpoint.

The chart is rendered with values pointing at the local cluster's PostgreSQL, Redis, Kafka and
Kubernetes API; each Deployment's container (operator, provider API, worker) is started with
podman (runc) in its image, with its rendered command, environment and security context, on the
host's network; the kubelet's own probe (the rendered readiness probe, else the liveness probe)
must answer 200. The operator reads a kubeconfig mounted where a pod would have its
service-account token.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.deploy.local_release import resolve_env
from tests.support.chart import Obj, containers, one, pod_spec, render
from tests.support.devcluster import ClusterEnv
from tests.support.images import OciImage, built_images, image_refs
from tests.support.isolation import unique_name
from tests.support.kafka import delete_topics
from tests.support.podman import Container, qualified, security_args
from tests.support.processes import free_port

SECRETS = {("cj-database", "password"): "unused-with-trust-auth"}


def secret(name: str, key: str) -> str:
    """The Secrets the rendered pods name: the database password (any works: trust
    authentication), else a token shared by every container naming the same Secret."""
    return SECRETS.get((name, key), f"test-{name}-{key}")


@pytest.fixture(scope="module")
def built() -> dict[str, OciImage]:
    return {image: OciImage(path) for image, path in built_images().items()}


@pytest.fixture
def topics(cluster: ClusterEnv) -> Iterator[dict[str, str]]:
    base = unique_name("huleedu.t")
    names = {
        "callback": f"{base}.comparison_result.v1",
        "completion": f"{base}.completed.v1",
        "dead_letter": f"{base}.comparison_result.v1.dlq",
    }
    yield names
    asyncio.run(delete_topics(cluster.kafka_bootstrap_servers, list(names.values())))


def release_values(
    cluster: ClusterEnv,
    database_url: str,
    redis_prefix: str,
    namespace: str,
    topics: dict[str, str],
    ports: dict[str, int],
) -> dict[str, object]:
    db = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    redis = urlsplit(cluster.redis_url)
    return {
        "database.host": db.hostname,
        "database.port": db.port,
        "database.name": db.path.lstrip("/"),
        "database.user": db.username,
        "redis.host": redis.hostname,
        "redis.port": redis.port,
        "redis.keyPrefix": redis_prefix,
        "redis.consumerGroup": unique_name("cj-workers-"),
        "kafka.bootstrapServers": cluster.kafka_bootstrap_servers,
        "kafka.topics.names": [topics["callback"], topics["completion"]],
        "kafka.topics.partitions": 1,
        "migrations.mode": "operatorStart",
        "operator.watchNamespaces": [namespace],
        "operator.metricsPort": ports["operator_metrics"],
        "operator.livenessPort": ports["operator_liveness"],
        "operator.providerApiUrl": f"http://127.0.0.1:{ports['api']}",
        "operator.settings": {
            "LLM_PROVIDER_CALLBACK_TOPIC": topics["callback"],
            "CJ_OPERATOR_COMPLETION_TOPIC": topics["completion"],
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": topics["dead_letter"],
            "CJ_OPERATOR_CONSUMER_GROUP": unique_name("cj-operator-"),
        },
        "providerApi.port": ports["api"],
        "worker.metricsPort": ports["worker"],
    }


def probe_url(container: Obj) -> str:
    """http://127.0.0.1:<port><path> of the readiness probe, else the liveness probe."""
    probe = container.get("readinessProbe") or container["livenessProbe"]
    port = probe["httpGet"]["port"]
    if isinstance(port, str):
        (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return f"http://127.0.0.1:{port}{probe['httpGet']['path']}"


def flat_kubeconfig(cluster: ClusterEnv, folder: Path) -> Path:
    """The cluster's kubeconfig with its certificates inline, readable by the image's user."""
    proc = subprocess.run(
        [str(cluster.kubectl), "config", "view", "--raw", "--flatten", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={"KUBECONFIG": cluster.kubeconfig},
        timeout=30,
    )
    path = folder / "kubeconfig"
    path.write_text(json.dumps(json.loads(proc.stdout)))
    path.chmod(0o644)
    return path


@pytest.mark.timeout(3600)  # includes a cold `make images` when the images are not built yet
def test_each_image_serves_its_health_endpoint_against_the_local_services(
    built: dict[str, OciImage],
    cluster: ClusterEnv,
    cjbatch_crd: str,
    namespace: str,
    database_url: str,
    redis_prefix: str,
    topics: dict[str, str],
    tmp_path: Path,
) -> None:
    ports = {k: free_port() for k in ("api", "operator_metrics", "operator_liveness", "worker")}
    objects = render(
        release_values(cluster, database_url, redis_prefix, namespace, topics, ports),
        namespace=namespace,
    )
    refs = image_refs()
    kubeconfig = flat_kubeconfig(cluster, tmp_path)
    started: dict[str, float] = {}
    with_containers: list[Container] = []
    try:
        for suffix in ("-provider-api", "-worker", "-operator"):
            deployment = one(objects, "Deployment", suffix)
            (container,) = containers(deployment)
            image = qualified(container["image"])
            assert image in refs.values(), f"{image} is not an image `make images` builds"
            env = resolve_env(container, secret, suffix[1:])
            extra = security_args(pod_spec(deployment), container)
            if suffix == "-operator":  # where a pod would have its service-account token
                env["KUBECONFIG"] = "/var/run/cj/kubeconfig"
                extra += ["--volume", f"{kubeconfig}:/var/run/cj/kubeconfig:ro"]
            argv = [*container["command"], *container.get("args", [])]
            run = Container(image, argv, env, extra)
            with_containers.append(run.__enter__())
            started[suffix[1:]] = run.wait_http_ok(probe_url(container), timeout=120)
    finally:
        for run in with_containers:
            run.__exit__(None, None, None)
    assert set(started) == {"provider-api", "worker", "operator"}
    print("seconds to healthy:", {name: round(s, 1) for name, s in started.items()})
