"""`helm install` into the local cluster creates the chart's objects, with its safe defaults
(a generated provider API token read by the API and the operator, NetworkPolicies); `helm
upgrade` keeps the token; `helm uninstall` removes them.

The cluster has no kubelet or job controller, so the test plays their part for the
migration hook Job: it runs the Job's container command locally, with the Job's environment
resolved as the kubelet would (secretKeyRef from the real Secret, then $(VAR) expansion),
against a fresh PostgreSQL database, and then marks the Job complete so helm goes on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.integration.deploy.local_release import SecretLookup, local_workload
from tests.support.chart import CHART_DIR, Obj, helm, helm_binary, set_args
from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl

KEPT_ON_UNINSTALL = {"CustomResourceDefinition"}


def secret_from_cluster(cluster: ClusterEnv, namespace: str) -> SecretLookup:
    """Read a key of a real Secret, as the kubelet would."""

    def lookup(name: str, key: str) -> str:
        secret = json.loads(kubectl(cluster, "get", "secret", name, "-n", namespace, "-o", "json"))
        return base64.b64decode(secret["data"][key]).decode()

    return lookup


class JobController:
    """Runs each Job that appears in `namespace` locally, then marks it succeeded."""

    def __init__(self, cluster: ClusterEnv, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.ran: dict[str, subprocess.CompletedProcess[str]] = {}
        self.runs = 0
        self._seen: set[str] = set()  # Job uids: a hook Job re-created on upgrade runs again
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> JobController:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                jobs = json.loads(
                    kubectl(self.cluster, "get", "jobs", "-n", self.namespace, "-o", "json")
                )
                for job in jobs["items"]:
                    if job["metadata"]["uid"] not in self._seen:
                        self._seen.add(job["metadata"]["uid"])
                        self._run(job)
            except Exception as exc:  # reported by the test, not lost in the thread
                self.errors.append(repr(exc))
                return

    def _run(self, job: Obj) -> None:
        name = job["metadata"]["name"]
        local = local_workload(job, secret_from_cluster(self.cluster, self.namespace), name)
        proc = subprocess.run(
            local.argv,
            env={**os.environ, **local.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        self.ran[name] = proc
        self.runs += 1
        if proc.returncode != 0:
            self.errors.append(f"job {name} failed:\n{proc.stdout}\n{proc.stderr}")
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"status": "True", "lastTransitionTime": now, "lastProbeTime": now}
        status = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [
                {**condition, "type": "SuccessCriteriaMet"},
                {**condition, "type": "Complete"},
            ],
        }
        kubectl(
            self.cluster,
            "patch",
            "job",
            name,
            "-n",
            self.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )


async def alembic_version(database_url: str) -> str | None:
    """The schema version alembic recorded in the database (None without the table)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        version: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
        return version
    finally:
        await conn.close()


def manifest_objects(text: str) -> list[Obj]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


def exists(cluster: ClusterEnv, obj: Obj, namespace: str) -> bool:
    kind = obj["kind"].lower()
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    resource = f"{kind}.{group}" if group else kind
    args = ["get", resource, obj["metadata"]["name"], "-o", "name", "--ignore-not-found"]
    if obj["metadata"].get("namespace") or kind not in {
        "clusterrole",
        "clusterrolebinding",
        "customresourcedefinition",
        "clusterkopfpeering",
    }:
        args += ["-n", obj["metadata"].get("namespace", namespace)]
    return bool(kubectl(cluster, *args).strip())


def stored(cluster: ClusterEnv, kind: str, name: str, namespace: str) -> Obj:
    """The object as the API server stores it."""
    obj: Obj = json.loads(kubectl(cluster, "get", kind, name, "-n", namespace, "-o", "json"))
    return obj


def token_secret_of(deployment: Obj, variable: str) -> dict[str, str]:
    """The secretKeyRef of `variable` in a stored Deployment's (only) container."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (entry,) = [e for e in container["env"] if e["name"] == variable]
    ref: dict[str, str] = entry["valueFrom"]["secretKeyRef"]
    return ref


def selects(selector: Obj, deployment: Obj) -> bool:
    """Whether a NetworkPolicy podSelector's matchLabels select the Deployment's pods."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def check_safe_defaults(cluster: ClusterEnv, release: str, namespace: str) -> str:
    """The stored objects carry the chart's safe defaults; returns the generated token (base64).

    The generated token Secret exists and both the API and the operator read it; the API's
    NetworkPolicy selects the API pods and admits only the operator pods and the `helm test`
    pod (same namespace).
    """
    prefix = f"{release}-cj-operator"
    secret = stored(cluster, "secret", f"{prefix}-provider-api-token", namespace)
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum(), token
    api = stored(cluster, "deployment", f"{prefix}-provider-api", namespace)
    operator = stored(cluster, "deployment", f"{prefix}-operator", namespace)
    worker = stored(cluster, "deployment", f"{prefix}-worker", namespace)
    ref = {"name": f"{prefix}-provider-api-token", "key": "token"}
    assert token_secret_of(api, "CJ_API_AUTH_TOKEN") == ref
    assert token_secret_of(operator, "CJ_OPERATOR_PROVIDER_API_TOKEN") == ref

    policy = stored(cluster, "networkpolicy", f"{prefix}-provider-api", namespace)["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert selects(policy["podSelector"], api)
    assert not selects(policy["podSelector"], operator)
    assert not selects(policy["podSelector"], worker)
    (rule,) = policy["ingress"]
    operator_peer, test_peer = rule["from"]  # the operator and the `helm test` pod
    for peer in (operator_peer, test_peer):
        assert set(peer) == {"podSelector"}, peer  # this namespace only
        assert not selects(peer["podSelector"], worker)
        assert not selects(peer["podSelector"], api)
    assert selects(operator_peer["podSelector"], operator)
    assert test_peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    for deployment, name in ((operator, "operator"), (worker, "worker")):
        spec = stored(cluster, "networkpolicy", f"{prefix}-{name}", namespace)["spec"]
        assert selects(spec["podSelector"], deployment)
        assert spec["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]
    data: str = secret["data"]["token"]
    return data


def can_i(
    cluster: ClusterEnv, who: str, namespace: str, verb: str, resource: str, subresource: str = ""
) -> bool:
    """`kubectl auth can-i` as `who`: the API server's own RBAC decision."""
    extra = [f"--subresource={subresource}"] if subresource else []
    out = kubectl(
        cluster, "auth", "can-i", verb, resource, *extra, "-n", namespace, "--as", who, check=False
    )
    return out.strip() == "yes"


def check_user_roles(cluster: ClusterEnv, release: str, namespace: str) -> None:
    """The stored user ClusterRoles carry the aggregation labels, and their rules give what
    they promise. This cluster runs no controller manager, so nothing aggregates them into
    `edit`/`view`: each is bound directly to an account here (the node e2e checks the
    aggregation itself)."""
    prefix = f"{release}-cj-operator"
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    expected = {"cj-batch-editor": {"admin", "edit"}, "cj-batch-viewer": {"view"}}
    for role, into in expected.items():
        stored_role = json.loads(
            kubectl(cluster, "get", "clusterrole", f"{prefix}-{role}", "-o", "json")
        )
        labels = stored_role["metadata"]["labels"]
        assert {
            k.removeprefix(aggregate)
            for k, v in labels.items()
            if k.startswith(aggregate) and v == "true"
        } == into
        kubectl(
            cluster,
            "create",
            "rolebinding",
            role,
            f"--clusterrole={prefix}-{role}",
            f"--serviceaccount={namespace}:{role}",
            "-n",
            namespace,
        )
    editor = f"system:serviceaccount:{namespace}:cj-batch-editor"
    viewer = f"system:serviceaccount:{namespace}:cj-batch-viewer"
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        assert can_i(cluster, editor, namespace, verb, "cjbatches.cj.huleedu.io"), verb
        assert can_i(cluster, viewer, namespace, verb, "cjbatches.cj.huleedu.io") == (
            verb in ("get", "list", "watch")
        ), verb
    for who in (editor, viewer):
        assert can_i(cluster, who, namespace, "get", "cjbatches.cj.huleedu.io", "status")
        assert not can_i(cluster, who, namespace, "patch", "cjbatches.cj.huleedu.io", "status")
        assert not can_i(cluster, who, namespace, "get", "secrets")
    # Granted in this namespace only.
    assert not can_i(cluster, editor, "default", "create", "cjbatches.cj.huleedu.io")


def notes_of(helm_output: str) -> str:
    """The NOTES part of `helm install` or `helm upgrade` output."""
    _, found, notes = helm_output.partition("\nNOTES:\n")
    assert found, helm_output
    return notes


def check_secret_warnings(
    cluster: ClusterEnv,
    release: str,
    namespace: str,
    values: Mapping[str, object],
    env: dict[str, str],
) -> None:
    """NOTES.txt warns once per missing Secret and per missing key, read from the API server
    (`--dry-run=server`: lookups work, nothing is created), and warns of nothing when it cannot
    ask (`--dry-run=client`)."""
    kubectl(
        cluster,
        "create",
        "secret",
        "generic",
        "cj-llm-keys",
        "-n",
        namespace,
        "--from-literal=anthropic=not-a-key",
    )
    named = {
        **values,
        "worker.providers.anthropic.existingSecret": "cj-llm-keys",
        "worker.providers.anthropic.key": "anthropic",
        "worker.providers.openai.existingSecret": "cj-llm-keys",  # no key `api-key` in it
        "redis.password.existingSecret": "team-secrets",  # missing, named twice
        "worker.providers.openaiCompatible.existingSecret": "team-secrets",
        "image.pullSecrets": ["registry-credentials"],  # missing
    }
    args = ["install", release, str(CHART_DIR), "-n", namespace, "--take-ownership"]
    server = notes_of(helm(*args, "--dry-run=server", *set_args(named), env=env))
    warnings = [line for line in server.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        "WARNING: Secret team-secrets (redis.password.existingSecret, "
        "worker.providers.openaiCompatible.existingSecret) does not exist in namespace "
        f"{namespace}: the pods that read it do not start (CreateContainerConfigError) until "
        "it is created.",
        f"WARNING: Secret registry-credentials (image.pullSecrets) does not exist in namespace "
        f"{namespace}: images from a private registry cannot be pulled (ImagePullBackOff) until "
        "it is created.",
        "WARNING: Secret cj-llm-keys has no key api-key (worker.providers.openai.key): the pods "
        "that read it do not start (CreateContainerConfigError) until it has.",
    ]
    client = notes_of(helm(*args, "--dry-run=client", *set_args(named), env=env))
    assert "WARNING" not in client
    assert "Secrets: not checked" in client
    kubectl(cluster, "delete", "secret", "cj-llm-keys", "-n", namespace)


@pytest.mark.timeout(600)
def test_install_creates_and_uninstall_removes(
    cluster: ClusterEnv, namespace: str, database_url: str
) -> None:
    url = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    kubectl(
        cluster,
        "create",
        "secret",
        "generic",
        "cj-database",
        "-n",
        namespace,
        "--from-literal=password=not-checked-by-trust-auth",
    )
    release = f"r{namespace[-8:]}"
    values = {
        "database.host": url.hostname,
        "database.port": url.port,
        "database.name": url.path.lstrip("/"),
        "database.user": url.username,
        "kafka.bootstrapServers": cluster.kafka_bootstrap_servers,
        "metrics.podAnnotations": True,
        "grafana.dashboard.enabled": True,
    }
    env = {"KUBECONFIG": cluster.kubeconfig, "HELM_CACHE_HOME": "/tmp/cj-helm-cache"}
    helm_binary()  # built before the clock of the install starts
    check_secret_warnings(cluster, release, namespace, values, env)
    with JobController(cluster, namespace) as jobs:
        # --take-ownership: the shared cluster's CJBatch CRD may already exist, created by
        # kubectl or by an earlier release; the chart adopts it (and keeps it on uninstall).
        out = helm(
            "install",
            release,
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--take-ownership",
            "--timeout",
            "3m",
            *set_args(values),
            env=env,
            timeout=400,
        )
    assert not jobs.errors, jobs.errors
    assert "STATUS: deployed" in out
    assert notes_of(out).splitlines()[3] == (
        f"Secrets: each of the 1 the values name (cj-database) exists in namespace {namespace}, "
        "with its keys."
    )
    (migrate,) = jobs.ran
    assert migrate.endswith("-migrate")
    # The succeeded hook Job is deleted by helm (hook-delete-policy hook-succeeded).
    assert not json.loads(kubectl(cluster, "get", "jobs", "-n", namespace, "-o", "json"))["items"]

    # The hook really migrated the database the chart pointed it at.
    version = asyncio.run(alembic_version(database_url))
    assert version

    objects = manifest_objects(helm("get", "manifest", release, "-n", namespace, env=env))
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "ClusterRole",
        "NetworkPolicy",
        "ConfigMap",
        "CustomResourceDefinition",
    } <= kinds
    for obj in objects:
        assert exists(cluster, obj, namespace), f"{obj['kind']}/{obj['metadata']['name']} missing"
    # The operator may do with ConfigMaps exactly what its code does: read essays, create
    # and update the results; nothing else.
    (account,) = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"].endswith("-operator")
    ]
    who = f"system:serviceaccount:{namespace}:{account}"
    allowed = {
        verb: kubectl(
            cluster, "auth", "can-i", verb, "configmaps", "-n", namespace, "--as", who, check=False
        ).strip()
        for verb in ("get", "create", "update", "list", "watch", "patch", "delete")
    }
    assert allowed == {
        "get": "yes",
        "create": "yes",
        "update": "yes",
        "list": "no",
        "watch": "no",
        "patch": "no",
        "delete": "no",
    }
    crd = json.loads(kubectl(cluster, "get", "crd", "cjbatches.cj.huleedu.io", "-o", "json"))
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
    check_user_roles(cluster, release, namespace)

    # Safe defaults with no value set: a generated API token, NetworkPolicies.
    token = check_safe_defaults(cluster, release, namespace)
    # `helm upgrade` (a changed value, the migration hook again) keeps the token: the chart
    # reads the live Secret back instead of drawing a new one.
    with JobController(cluster, namespace) as jobs:
        out = helm(
            "upgrade",
            release,
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--timeout",
            "3m",
            *set_args({**values, "providerApi.replicas": 3}),
            env=env,
            timeout=400,
        )
    assert not jobs.errors, jobs.errors
    assert jobs.runs == 1, "the pre-upgrade migration hook did not run"
    assert "REVISION: 2" in out
    assert notes_of(out).startswith(f"cj-operator 0.1.0 is upgraded: release {release} in")
    assert (
        stored(cluster, "deployment", f"{release}-cj-operator-provider-api", namespace)["spec"][
            "replicas"
        ]
        == 3
    )
    assert check_safe_defaults(cluster, release, namespace) == token

    helm("uninstall", release, "--namespace", namespace, "--timeout", "2m", env=env)
    deadline = time.monotonic() + 60
    left = objects
    while left and time.monotonic() < deadline:
        left = [
            o
            for o in objects
            if o["kind"] not in KEPT_ON_UNINSTALL and exists(cluster, o, namespace)
        ]
        time.sleep(0.5)
    assert not left, [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    # The CRD stays (helm.sh/resource-policy: keep): deleting it would delete every CJBatch.
    assert kubectl(cluster, "get", "crd", "cjbatches.cj.huleedu.io", "-o", "name").strip()
    releases = helm("list", "-n", namespace, "-q", env=env)
    assert release not in releases.split()
