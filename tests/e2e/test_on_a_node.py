"""The chart on a real node: `helm install` runs the operator, the provider API and the workers
as pods from the images `make images` built, and a CJBatch completes through them.

The node cluster is `hack/devcluster up --node` in a state directory of its own
(`tests.support.devcluster.node_state_dir`): containerd (runc), kubelet, kube-proxy,
kube-scheduler and kube-controller-manager beside its own PostgreSQL, Redis, Kafka and API
server, which the pods reach on the host as external services. It is a cluster of its own so
that the rest of the suite keeps its API server without a kubelet. The test is skipped, with
`hack/devcluster node-check`'s reasons, only when this machine cannot run the node
(CJ_REQUIRE_NODE=1 makes that a failure); a node that should start and does not is a failure.

Steps: helm install (the migration hook Job runs as a real Job), every pod Ready (probes
pass), `helm test` (cj-check in the test pod passes), the user roles aggregated into the
built-in `edit` and `view`, a CJBatch judged by the `mock` judge with latency, `kubectl
rollout restart` of the workers while it runs (every comparison still counted once, none
failed), scale the workers to 3, measure each pod's memory from its cgroup, helm uninstall
(the pods go away).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import yaml

from tests.e2e.tallies import database_counts
from tests.support.chart import CHART_DIR, helm, helm_binary, set_args
from tests.support.devcluster import (
    REPO_ROOT,
    NodeClusterEnv,
    keep_running,
    node_check,
    node_down,
    node_is_running,
    node_state_dir,
    node_up,
    read_node_env,
)
from tests.support.isolation import unique_name
from tests.support.kafka import delete_topics
from tests.support.kube import kubectl

RELEASE = "cj"
FULLNAME = "cj-cj-operator"  # the chart's fullname for release "cj"
WORKER_LATENCY_MS = 800


@pytest.fixture(scope="module")
def node() -> Iterator[NodeClusterEnv]:
    """The node cluster: reused when running, else started here and stopped afterwards."""
    state_dir = node_state_dir()
    reason = node_check(state_dir)
    if reason is not None:
        if os.environ.get("CJ_REQUIRE_NODE") == "1":
            pytest.fail(f"CJ_REQUIRE_NODE=1 but {reason}")
        pytest.skip(reason)
    started = not node_is_running(state_dir)
    if started:
        node_up(state_dir)
    yield read_node_env(state_dir)
    if started and not keep_running():
        node_down(state_dir)


@pytest_asyncio.fixture
async def node_database(node: NodeClusterEnv) -> AsyncIterator[str]:
    """A fresh database in the node cluster's PostgreSQL: its name."""
    name = unique_name("e2e_")
    url = node.cluster.database_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def wait_until(check: Callable[[], Any], within: float, what: str, every: float = 1.0) -> Any:
    """Poll `check` until it returns a truthy value (returned); AssertionError naming `what`."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {within} s")
        time.sleep(every)


def release_values(node: NodeClusterEnv, database: str, topics: dict[str, str]) -> dict[str, Any]:
    """The chart pointed at the node cluster's services as pods reach them."""
    # No cluster DNS on this node: the operator reaches the API's Service through the service
    # variables the kubelet sets (Kubernetes expands $(VAR) from them too).
    service_env = FULLNAME.upper().replace("-", "_") + "_PROVIDER_API_SERVICE"
    return {
        "database.host": node.pod_host,
        "database.port": node.pod_database_port,
        "database.name": database,
        "redis.host": node.pod_host,
        "redis.port": node.pod_redis_port,
        "redis.keyPrefix": unique_name("e2e:") + ":",
        "redis.consumerGroup": unique_name("cj-workers-"),
        "kafka.bootstrapServers": node.pod_kafka_bootstrap_servers,
        "kafka.topics.names": [topics["callback"], topics["completion"]],
        "kafka.topics.partitions": 3,
        "operator.providerApiUrl": f"http://$({service_env}_HOST):$({service_env}_PORT)",
        "operator.settings": {
            "LLM_PROVIDER_CALLBACK_TOPIC": topics["callback"],
            "CJ_OPERATOR_COMPLETION_TOPIC": topics["completion"],
            "CJ_OPERATOR_DEAD_LETTER_TOPIC": topics["dead_letter"],
            "CJ_OPERATOR_CONSUMER_GROUP": unique_name("cj-operator-"),
            "CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "1",
        },
        "worker.concurrency": 2,
        "worker.settings": {"CJ_WORKER_MOCK_LATENCY_MS": str(WORKER_LATENCY_MS)},
        # The test judges are off by default (chart value enabledProviders); this batch uses mock.
        "enabledProviders": ["offline", "mock"],
    }


def default_secrets() -> list[tuple[str, str, str]]:
    """(Secret, key, value) of each Secret the chart's default values name: the database
    password (any works: trust authentication) and, when the defaults require one, the
    provider API's token (random; the operator sends the same)."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    password = values["database"]["password"]
    out = [(password["existingSecret"], password["key"], "unused-with-trust-auth")]
    token = values["providerApi"]["authToken"]
    if token["existingSecret"]:
        out.append((token["existingSecret"], token["key"], secrets.token_urlsafe(24)))
    return out


async def alembic_revision(database_url: str) -> str | None:
    """The schema revision alembic recorded (raises UndefinedTableError without its table)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        revision: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
        return revision
    finally:
        await conn.close()


CHECK_LINE = re.compile(r"^(PostgreSQL|Redis|Kafka|provider API) +(ok|FAIL) ", re.MULTILINE)
"""A line of cj-check's output: the dependency and its verdict."""


def helm_test(helm_env: dict[str, str], namespace: str) -> subprocess.CompletedProcess[str]:
    """`helm test` of the release; stdout (the test suite's status) and stderr (the test pod's
    output, which helm prints by the pod's hook-output-log-policy) kept apart."""
    return subprocess.run(
        [str(helm_binary()), "test", RELEASE, "-n", namespace, "--timeout", "5m"],
        env={**os.environ, **helm_env},
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )


def can_i(
    node: NodeClusterEnv, namespace: str, account: str, verb: str, subresource: str = ""
) -> bool:
    """Whether the ServiceAccount `account` may `verb` CJBatches (or their `subresource`)."""
    out = kubectl(
        node.cluster,
        "auth",
        "can-i",
        verb,
        "cjbatches.cj.huleedu.io",
        *([f"--subresource={subresource}"] if subresource else []),
        "-n",
        namespace,
        "--as",
        f"system:serviceaccount:{namespace}:{account}",
        check=False,
    )
    return out.strip() == "yes"


def pods(node: NodeClusterEnv, namespace: str) -> list[dict[str, Any]]:
    out = kubectl(node.cluster, "get", "pods", "-n", namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def worker_names(node: NodeClusterEnv, namespace: str) -> set[str]:
    """Names of the worker pods that are not being deleted."""
    return {
        p["metadata"]["name"]
        for p in pods(node, namespace)
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
        and "deletionTimestamp" not in p["metadata"]
    }


def rollout_status(node: NodeClusterEnv, namespace: str) -> None:
    kubectl(
        node.cluster,
        "rollout",
        "status",
        f"deployment/{FULLNAME}-worker",
        "-n",
        namespace,
        "--timeout=110s",
    )


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return conditions.get("Ready") == "True"


def batch_status(node: NodeClusterEnv, namespace: str, name: str) -> dict[str, Any]:
    out = kubectl(node.cluster, "get", "cjb", name, "-n", namespace, "-o", "json")
    status: dict[str, Any] = json.loads(out).get("status", {})
    return status


def pod_memory_mib(pod: dict[str, Any]) -> tuple[float, float]:
    """(resident, peak) memory of a pod's cgroup in MiB, read on the node: resident set (RSS,
    page cache excluded) now, and the peak of the cgroup's usage (page cache included)."""
    uid = pod["metadata"]["uid"]
    v1 = [*Path("/sys/fs/cgroup/memory/kubepods").glob(f"**/pod{uid}")]
    if v1:
        stat = dict(line.split() for line in (v1[0] / "memory.stat").read_text().splitlines())
        rss = int(stat["total_rss"])
        peak = int((v1[0] / "memory.max_usage_in_bytes").read_text())
    else:
        (v2,) = Path("/sys/fs/cgroup/kubepods").glob(f"**/pod{uid}")
        stat = dict(line.split() for line in (v2 / "memory.stat").read_text().splitlines())
        rss = int(stat["anon"])
        peak = int((v2 / "memory.peak").read_text())
    return rss / 2**20, peak / 2**20


def memory_limit_mib(pod: dict[str, Any]) -> float:
    """The pod's memory limit (its one container's) in MiB."""
    (container,) = pod["spec"]["containers"]
    limit = str(container["resources"]["limits"]["memory"])
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(limit[:-2]) * units[limit[-2:]]


def seconds_to_ready(pod: dict[str, Any]) -> float:
    """From the pod's creation to its Ready condition (the API's 1 s resolution)."""
    (cond,) = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"])
    return (datetime.fromisoformat(cond["lastTransitionTime"]) - created).total_seconds()


def demo_batch(name: str) -> dict[str, Any]:
    batch: dict[str, Any] = yaml.safe_load((REPO_ROOT / "examples" / "demo-batch.yaml").read_text())
    batch["metadata"] = {"name": name}
    batch["spec"]["judge"] = {"provider": "mock", "model": "mock"}
    return batch


@pytest.mark.timeout(3600)  # a cold node: images and kubelet & co. built first
async def test_helm_install_on_a_node_runs_a_batch_through_pods(
    node: NodeClusterEnv, node_database: str, tmp_path: Path
) -> None:
    cluster = node.cluster
    namespace = unique_name("e2e-node-")
    base = unique_name("huleedu.e2e")
    topics = {
        "callback": f"{base}.comparison_result.v1",
        "completion": f"{base}.completed.v1",
        "dead_letter": f"{base}.comparison_result.v1.dlq",
    }
    kubectl(cluster, "create", "namespace", namespace)
    for secret_name, key, value in default_secrets():
        kubectl(
            cluster,
            "create",
            "secret",
            "generic",
            secret_name,
            "-n",
            namespace,
            f"--from-literal={key}={value}",
        )
    helm_env = {"KUBECONFIG": cluster.kubeconfig}
    timings: dict[str, float] = {}
    try:
        start = time.monotonic()
        helm(
            "install",
            RELEASE,
            str(CHART_DIR),
            "-n",
            namespace,
            "--wait",
            "--timeout",
            "10m",
            # The CRD outlives releases (resource-policy keep): adopt one an earlier run left.
            "--take-ownership",
            *set_args(release_values(node, node_database, topics)),
            env=helm_env,
            timeout=900,
        )
        running = [p for p in pods(node, namespace) if p["status"]["phase"] != "Succeeded"]
        deployments = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in running}
        assert {"operator", "provider-api", "worker"} <= deployments, deployments
        assert all(ready(p) for p in running), [p["metadata"]["name"] for p in running]
        timings["helm install --wait, every pod Ready (s)"] = time.monotonic() - start
        to_ready = {p["metadata"]["name"]: seconds_to_ready(p) for p in running}
        for pod in running:  # the kubelet's own probes passed: Ready, no restart
            assert all(c["restartCount"] == 0 for c in pod["status"]["containerStatuses"]), pod
        # The migration hook Job ran as a real Job (the job controller, a pod on the node): the
        # schema is there, and helm deleted the succeeded Job (hook-delete-policy hook-succeeded).
        host_db = cluster.database_url.rsplit("/", 1)[0] + "/" + node_database
        assert await alembic_revision(host_db), "the migration Job did not migrate"
        assert not json.loads(kubectl(cluster, "get", "jobs", "-n", namespace, "-o", "json"))[
            "items"
        ]

        # `helm test`: cj-check in the test pod reaches PostgreSQL, Redis, Kafka and the API
        # (its NetworkPolicy admits the pod) from inside the cluster, and passes.
        start = time.monotonic()
        tested = helm_test(helm_env, namespace)
        timings["helm test (s)"] = time.monotonic() - start
        assert tested.returncode == 0, tested.stdout + tested.stderr
        checks = dict(CHECK_LINE.findall(tested.stderr))  # helm prints the pod's output
        assert checks == dict.fromkeys(("PostgreSQL", "Redis", "Kafka", "provider API"), "ok"), (
            tested.stderr
        )
        assert "cj-check: all 4 checks passed" in tested.stderr
        suite = rf"TEST SUITE: +{FULLNAME}-test\n(.*\n){{2}}Phase: +Succeeded"
        assert re.search(suite, tested.stdout), tested.stdout
        # A passed test pod is deleted (hook-delete-policy hook-succeeded).
        assert f"{FULLNAME}-test" not in {p["metadata"]["name"] for p in pods(node, namespace)}

        # The user roles reach the built-in `edit` and `view` roles through the controller
        # manager's clusterrole-aggregation controller (without them neither grants CJBatches).
        for role in ("edit", "view"):
            kubectl(
                cluster,
                "create",
                "rolebinding",
                f"user-{role}",
                f"--clusterrole={role}",
                f"--serviceaccount={namespace}:user-{role}",
                "-n",
                namespace,
            )
        wait_until(
            lambda: can_i(node, namespace, "user-view", "get"),
            within=60,
            what="the aggregated CJBatch rules in the built-in roles",
        )
        wait_until(
            lambda: can_i(node, namespace, "user-edit", "create"),
            within=60,
            what="the aggregated CJBatch editor rules in the built-in edit role",
        )
        assert not can_i(node, namespace, "user-view", "create")
        assert can_i(node, namespace, "user-edit", "delete")
        for user in ("user-edit", "user-view"):
            assert not can_i(node, namespace, user, "patch", "status")

        # A batch through the pods; the workers are restarted while it runs.
        name = unique_name("node-batch-")
        start = time.monotonic()
        kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(demo_batch(name)))
        wait_until(
            lambda: batch_status(node, namespace, name).get("completed", 0) >= 8,
            within=300,
            what="the batch's first comparisons",
        )
        old_workers = worker_names(node, namespace)
        restarted = time.monotonic()
        kubectl(cluster, "rollout", "restart", f"deployment/{FULLNAME}-worker", "-n", namespace)
        at_restart = batch_status(node, namespace, name)
        assert at_restart["completed"] < at_restart["budget"], "the restart came after the batch"
        rollout_status(node, namespace)
        timings["rollout restart of the workers (s)"] = time.monotonic() - restarted
        final = wait_until(
            lambda: (
                (s := batch_status(node, namespace, name)).get("phase") in ("Completed", "Failed")
                and s
            ),
            within=600,
            what="the batch to finish",
        )
        assert final["phase"] == "Completed", final
        timings[f"batch of {final['budget']} comparisons (s)"] = time.monotonic() - start
        assert final["failed"] == 0 and final["pending"] == 0, final
        assert final["completed"] == final["submitted"] == final["budget"], final
        assert not old_workers & worker_names(node, namespace), "the workers were replaced"
        uid = json.loads(kubectl(cluster, "get", "cjb", name, "-n", namespace, "-o", "json"))[
            "metadata"
        ]["uid"]
        counts = await database_counts(host_db, uid)
        assert (counts.submitted, counts.completed, counts.failed) == (
            final["submitted"],
            final["completed"],
            0,
        )

        measured = [
            p
            for p in pods(node, namespace)
            if p["status"]["phase"] == "Running" and "deletionTimestamp" not in p["metadata"]
        ]
        memory = {p["metadata"]["name"]: pod_memory_mib(p) for p in measured}
        limits = {p["metadata"]["name"]: memory_limit_mib(p) for p in measured}

        start = time.monotonic()
        kubectl(cluster, "scale", f"deployment/{FULLNAME}-worker", "-n", namespace, "--replicas=3")
        rollout_status(node, namespace)
        workers = [
            p
            for p in pods(node, namespace)
            if p["metadata"]["name"] in worker_names(node, namespace)
        ]
        assert len([p for p in workers if ready(p)]) == 3, [p["metadata"]["name"] for p in workers]
        timings["scale workers 2 -> 3 Ready (s)"] = time.monotonic() - start

        start = time.monotonic()
        helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "5m", env=helm_env)
        # Every pod goes: the Deployments' with the release, the hooks' (the migration Job's)
        # already with their succeeded hook.
        wait_until(
            lambda: not pods(node, namespace),
            within=180,
            what="the operator's, API's and workers' pods to go",
        )
        timings["helm uninstall, every pod gone (s)"] = time.monotonic() - start
        crd = kubectl(cluster, "get", "crd", "cjbatches.cj.huleedu.io", "-o", "name")
        assert crd.strip(), "the CRD is kept (helm.sh/resource-policy: keep)"
    finally:
        helm("uninstall", RELEASE, "-n", namespace, "--ignore-not-found", env=helm_env)
        kubectl(cluster, "delete", "namespace", namespace, "--wait=false", check=False)
        await delete_topics(cluster.kafka_bootstrap_servers, list(topics.values()))
    report = {
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "pod created -> Ready (s)": to_ready,
        "memory MiB (resident, peak usage) after the batch": {
            k: (round(a), round(b)) for k, (a, b) in memory.items()
        },
    }
    (tmp_path / "node-e2e.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    for pod_name, (_, peak) in memory.items():
        assert peak < limits[pod_name], f"{pod_name} peaked at {peak:.0f} MiB, its limit"
