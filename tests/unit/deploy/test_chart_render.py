"""The chart's logic, checked on `helm template` output (real helm, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.chart import (
    ALL_ON_VALUES,
    CHART_DIR,
    REPO_ROOT,
    Obj,
    containers,
    env_of,
    helm,
    of_kind,
    one,
    pod_spec,
    render,
    workloads,
)

SECRET_LIKE = ("_KEY", "_TOKEN", "PASSWORD", "_SECRET")
OPTIONAL_KINDS = {
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
    "ScaledObject",
    "ConfigMap",
    "ClusterKopfPeering",
}


@pytest.fixture(scope="module")
def default_objects() -> list[Obj]:
    return render()


@pytest.fixture(scope="module")
def all_on_objects() -> list[Obj]:
    return render(values_files=[ALL_ON_VALUES])


@pytest.mark.parametrize("values_file", [None, ALL_ON_VALUES], ids=["default", "all-on"])
def test_helm_lint_passes_strictly(values_file: Path | None) -> None:
    args = ["lint", str(CHART_DIR), "--strict"]
    if values_file:
        args += ["-f", str(values_file)]
    out = helm(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_default_render_has_the_core_objects_and_no_optional_ones(
    default_objects: list[Obj],
) -> None:
    kinds = {o["kind"] for o in default_objects}
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PodDisruptionBudget",
        "Job",
        # Safe defaults: the generated API token and the NetworkPolicies.
        "Secret",
        "NetworkPolicy",
    } <= kinds
    assert not kinds & OPTIONAL_KINDS, kinds & OPTIONAL_KINDS
    names = {o["metadata"]["name"] for o in of_kind(default_objects, "Deployment")}
    assert names == {
        "cj-cj-operator-operator",
        "cj-cj-operator-provider-api",
        "cj-cj-operator-worker",
    }


def test_all_on_render_has_every_optional_part(all_on_objects: list[Obj]) -> None:
    kinds = {o["kind"] for o in all_on_objects}
    assert kinds >= OPTIONAL_KINDS
    assert "HorizontalPodAutoscaler" not in kinds  # KEDA is on in all-on values
    jobs = {o["metadata"]["name"] for o in of_kind(all_on_objects, "Job")}
    assert jobs == {"cj-cj-operator-migrate", "cj-cj-operator-bootstrap-topics"}
    crds = {o["metadata"]["name"] for o in of_kind(all_on_objects, "CustomResourceDefinition")}
    assert crds == {
        "cjbatches.cj.huleedu.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def test_hpa_alone_renders_an_hpa_and_no_replicas() -> None:
    objects = render({"worker.autoscaling.hpa.enabled": True})
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cj-cj-operator-worker"
    assert "replicas" not in one(objects, "Deployment", "-worker")["spec"]
    assert not of_kind(objects, "ScaledObject")


def test_keda_on_means_no_replicas_and_no_hpa(all_on_objects: list[Obj]) -> None:
    worker = one(all_on_objects, "Deployment", "-worker")
    assert "replicas" not in worker["spec"]
    assert not of_kind(all_on_objects, "HorizontalPodAutoscaler")
    scaled = one(all_on_objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    streams = [t["metadata"]["stream"] for t in scaled["spec"]["triggers"]]
    assert streams == ["cj:provider:requests:high", "cj:provider:requests:normal"]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["consumerGroup"] == "cj-workers"
        # The password is read from the worker's own env (a secretKeyRef), never copied.
        assert trigger["metadata"]["passwordFromEnv"] == "REDIS_PASSWORD"
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
    assert "REDIS_PASSWORD" in env_of(containers(worker)[0])


def test_without_autoscaling_the_worker_has_its_replicas(default_objects: list[Obj]) -> None:
    assert one(default_objects, "Deployment", "-worker")["spec"]["replicas"] == 2


def _rbac_objects() -> list[Obj]:
    renders = [
        render(),
        render(values_files=[ALL_ON_VALUES]),
        render({"operator.watchNamespaces": ["team-a", "team-b"]}),
    ]
    return [o for objs in renders for o in objs if o["kind"] in ("Role", "ClusterRole")]


def test_rbac_has_no_wildcards_anywhere() -> None:
    roles = _rbac_objects()
    # 2 + 2 ClusterRoles of the operator, then 1 ClusterRole + 2 Roles; 2 user roles each time.
    assert len(roles) == 7 + 3 * 2
    for role in roles:
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups", "resourceNames"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate"}, rule


def test_rbac_is_split_cluster_wide_and_namespaced() -> None:
    objects = render({"operator.watchNamespaces": ["team-a", "team-b"]})
    cluster = one(objects, "ClusterRole", "-operator-cluster")
    cluster_resources = {r for rule in cluster["rules"] for r in rule["resources"]}
    assert cluster_resources == {"customresourcedefinitions", "namespaces"}
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = of_kind(objects, "RoleBinding")
    assert all(b["subjects"][0]["namespace"] == "cj-system" for b in bindings)
    namespaced = {r for rule in roles[0]["rules"] for r in rule["resources"]}
    assert {"cjbatches", "cjbatches/status", "configmaps", "events"} <= namespaced
    # Only the cluster role when watching listed namespaces: no cluster-wide CJBatch rights.
    operator_roles = [
        c["metadata"]["name"]
        for c in of_kind(objects, "ClusterRole")
        if c["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]
    assert operator_roles == ["cj-cj-operator-operator-cluster"]
    bound = {b["roleRef"]["name"] for b in of_kind(objects, "ClusterRoleBinding")}
    assert bound == {"cj-cj-operator-operator-cluster"}
    operator = one(objects, "Deployment", "-operator")
    command = containers(operator)[0]["command"]
    assert "--namespace=team-a" in command and "--namespace=team-b" in command
    assert "--all-namespaces" not in command


def _secret_env_entries(objects: list[Obj]) -> list[tuple[str, Obj]]:
    return [
        (c["name"], e)
        for w in workloads(objects)
        for c in containers(w)
        for e in c.get("env", [])
        if e["name"].endswith(SECRET_LIKE)
    ]


def test_secrets_only_by_reference(all_on_objects: list[Obj], default_objects: list[Obj]) -> None:
    # The one Secret the chart ever renders is the API token it generates when none is named.
    assert [s["metadata"]["name"] for s in of_kind(default_objects, "Secret")] == [
        "cj-cj-operator-provider-api-token"
    ]
    assert not of_kind(all_on_objects, "Secret")
    for objects in (default_objects, all_on_objects):
        for container, entry in _secret_env_entries(objects):
            assert "value" not in entry, (container, entry)
            assert set(entry["valueFrom"]) == {"secretKeyRef"}, (container, entry)
    names = {e["name"] for _, e in _secret_env_entries(all_on_objects)}
    assert names == {
        "DATABASE_PASSWORD",
        "REDIS_PASSWORD",
        "CJ_API_AUTH_TOKEN",
        "CJ_OPERATOR_PROVIDER_API_TOKEN",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "CJ_WORKER_OPENAI_COMPATIBLE_API_KEY",
    }
    # URLs embed the password only through Kubernetes' $(VAR) expansion.
    for w in workloads(all_on_objects):
        for c in containers(w):
            env = env_of(c)
            if "DATABASE_URL" in env:
                assert env["DATABASE_URL"]["value"] == (
                    "postgresql+asyncpg://cj:$(DATABASE_PASSWORD)@postgresql:5432/cj?ssl=require"
                )
                names_in_order = [e["name"] for e in c["env"]]
                assert names_in_order.index("DATABASE_PASSWORD") < names_in_order.index(
                    "DATABASE_URL"
                )
            if "REDIS_URL" in env:
                assert env["REDIS_URL"]["value"] == "rediss://:$(REDIS_PASSWORD)@redis:6379/0"


def test_database_url_from_a_secret_replaces_the_composed_one() -> None:
    objects = render({"database.urlSecret.existingSecret": "cj-db-url"})
    env = env_of(containers(one(objects, "Deployment", "-operator"))[0])
    assert "DATABASE_PASSWORD" not in env
    assert env["DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "cj-db-url", "key": "database-url"}
    }


@pytest.mark.parametrize("which", ["default", "all-on"])
def test_every_pod_is_non_root_read_only_and_token_less_where_unneeded(which: str) -> None:
    objects = render(values_files=[ALL_ON_VALUES] if which == "all-on" else [])
    for w in workloads(objects):
        spec = pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        for c in containers(w):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        if not w["metadata"]["name"].endswith("-operator"):
            assert spec["automountServiceAccountToken"] is False, w["metadata"]["name"]


def test_operator_deployment_recreate_liveness_and_standalone(default_objects: list[Obj]) -> None:
    operator = one(default_objects, "Deployment", "-operator")
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    assert operator["spec"]["replicas"] == 1
    c = containers(operator)[0]
    assert c["command"][:3] == ["kopf", "run", "--standalone"]
    assert "--all-namespaces" in c["command"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["command"]
    assert c["command"][-2:] == ["-m", "cj_operator.handlers"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    env = env_of(c)
    assert env["CJ_OPERATOR_PROVIDER_API_URL"]["value"] == (
        "http://cj-cj-operator-provider-api.cj-system.svc:80"
    )
    # Migrations run in the hook Job by default, so not at operator start.
    assert env["CJ_OPERATOR_MIGRATE_ON_START"]["value"] == "false"
    job = one(default_objects, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert containers(job)[0]["command"] == ["cj-operator-migrate"]


def test_hook_jobs_are_deleted_once_they_succeed_and_kept_for_a_while_when_they_fail(
    all_on_objects: list[Obj],
) -> None:
    jobs = {o["metadata"]["name"]: o for o in of_kind(all_on_objects, "Job")}
    assert set(jobs) == {"cj-cj-operator-migrate", "cj-cj-operator-bootstrap-topics"}
    for name, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade", name
        policies = annotations["helm.sh/hook-delete-policy"].split(",")
        # Succeeded: gone (Helm never deletes hooks on uninstall); failed: kept for its logs.
        assert sorted(policies) == ["before-hook-creation", "hook-succeeded"], name
        assert job["spec"]["ttlSecondsAfterFinished"] == 600, name


def test_operator_readiness_is_kopfs_health_endpoint_and_fails_before_liveness(
    default_objects: list[Obj],
) -> None:
    c = containers(one(default_objects, "Deployment", "-operator"))[0]
    (flag,) = [a for a in c["command"] if a.startswith("--liveness=")]
    served = urlsplit(flag.removeprefix("--liveness="))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    readiness, liveness = c["readinessProbe"], c["livenessProbe"]
    for probe in (readiness, liveness):
        # The one endpoint kopf serves: its path, on the port the flag binds.
        assert probe["httpGet"]["path"] == served.path == "/healthz"
        assert ports[probe["httpGet"]["port"]] == served.port
    # A PostgreSQL outage takes the pod out of Ready well before liveness restarts it.
    not_ready_after = readiness["periodSeconds"] * readiness["failureThreshold"]
    restarted_after = liveness["periodSeconds"] * liveness["failureThreshold"]
    assert not_ready_after < restarted_after


def test_migrations_at_operator_start_render_no_job() -> None:
    objects = render({"migrations.mode": "operatorStart"})
    assert not of_kind(objects, "Job")
    env = env_of(containers(one(objects, "Deployment", "-operator"))[0])
    assert env["CJ_OPERATOR_MIGRATE_ON_START"]["value"] == "true"


def test_peering_standbys(all_on_objects: list[Obj]) -> None:
    operator = one(all_on_objects, "Deployment", "-operator")
    assert operator["spec"]["replicas"] == 2
    c = containers(operator)[0]
    assert "--peering=cj-operator" in c["command"] and "--standalone" not in c["command"]
    env = env_of(c)
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    peering = one(all_on_objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "cj-operator"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]


def test_provider_api_and_workers_commands_ports_and_probes(default_objects: list[Obj]) -> None:
    api = containers(one(default_objects, "Deployment", "-provider-api"))[0]
    assert api["command"] == ["cj-provider-api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = one(default_objects, "Service", "-provider-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    worker = containers(one(default_objects, "Deployment", "-worker"))[0]
    assert worker["command"] == ["cj-worker"]
    env = env_of(worker)
    assert env["CJ_WORKER_CONSUMER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # The drain deadline stays below the pod's grace period.
    assert env["CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS"]["value"] == "25"
    grace = pod_spec(one(default_objects, "Deployment", "-worker"))["terminationGracePeriodSeconds"]
    assert grace == 30


def test_images_tags_registry_and_digest() -> None:
    objects = render(
        {"image.registry": "reg.example/cj/", "operator.image.digest": "sha256:" + "a" * 64}
    )
    assert containers(one(objects, "Deployment", "-operator"))[0]["image"] == (
        "reg.example/cj/cj-operator@sha256:" + "a" * 64
    )
    assert containers(one(objects, "Deployment", "-worker"))[0]["image"] == (
        "reg.example/cj/cj-workers:0.1.0"
    )


def test_crd_template_renders_crds_file_unchanged(default_objects: list[Obj]) -> None:
    link = CHART_DIR / "files" / "crds" / "cjbatch.yaml"
    source = REPO_ROOT / "crds" / "cjbatch.yaml"
    assert link.resolve() == source.resolve(), "the chart must read crds/cjbatch.yaml itself"
    rendered = one(default_objects, "CustomResourceDefinition")
    expected = yaml.safe_load(source.read_text())
    assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    stripped = json.loads(json.dumps(rendered))
    for key in ("labels", "annotations"):
        extra = stripped["metadata"].pop(key)
        for k, v in (expected["metadata"].get(key) or {}).items():
            assert extra[k] == v
    expected["metadata"].pop("labels", None)
    expected["metadata"].pop("annotations", None)
    assert stripped == expected


def test_crd_can_be_left_out_and_kept_or_not() -> None:
    assert not of_kind(render({"crds.install": False}), "CustomResourceDefinition")
    crd = one(render({"crds.keep": False}), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_dashboard_configmap_ships_the_generated_json(all_on_objects: list[Obj]) -> None:
    from deploy.dashboard import render as render_dashboard

    cm = one(all_on_objects, "ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["cj-operator.json"]) == json.loads(render_dashboard())


def test_network_policies_admit_only_what_each_pod_serves(all_on_objects: list[Obj]) -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind(all_on_objects, "NetworkPolicy")}
    api = policies["cj-cj-operator-provider-api"]["spec"]
    assert api["policyTypes"] == ["Ingress"]
    (rule,) = api["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = rule["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert peers[1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert len(peers) == 4  # operator, the helm test pod, apiFrom, metricsFrom
    for name in ("cj-cj-operator-operator", "cj-cj-operator-worker"):
        (rule,) = policies[name]["spec"]["ingress"]
        assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }


def test_metrics_annotations_match_the_container_ports(default_objects: list[Obj]) -> None:
    for w in of_kind(default_objects, "Deployment"):
        annotations = w["spec"]["template"]["metadata"]["annotations"]
        ports = {p["containerPort"] for c in containers(w) for p in c.get("ports", [])}
        assert int(annotations["prometheus.io/port"]) in ports
    off = render({"metrics.podAnnotations": False})
    for w in of_kind(off, "Deployment"):
        assert not w["spec"]["template"]["metadata"].get("annotations")


def test_template_failures_name_the_value() -> None:
    from tests.support.chart import HelmError

    with pytest.raises(HelmError, match=r"queueLowWater \(30000\) must not exceed"):
        render({"providerApi.queueLowWater": 30000})
    with pytest.raises(HelmError, match=r"operator.peering needs operator.watchNamespaces empty"):
        render({"operator.peering.enabled": True, "operator.watchNamespaces": ["team-a"]})


@pytest.mark.parametrize("ttl", [None, 600])
def test_one_request_ttl_value_feeds_the_api_and_the_operators_overdue_cutoff(
    ttl: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cj_operator.settings import OperatorSettings
    from cj_workers.settings import ProviderApiSettings

    objects = render({} if ttl is None else {"queue.requestTtlSeconds": ttl})
    api_env = env_of(containers(one(objects, "Deployment", "-provider-api"))[0])
    operator_env = env_of(containers(one(objects, "Deployment", "-operator"))[0])
    expected = str(ttl or 3600)
    assert api_env["CJ_API_REQUEST_TTL_SECONDS"]["value"] == expected
    assert operator_env["CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS"]["value"] == expected
    # What the two processes make of their rendered variables.
    monkeypatch.setenv("CJ_API_REQUEST_TTL_SECONDS", api_env["CJ_API_REQUEST_TTL_SECONDS"]["value"])
    for name in (
        "CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS",
        "CJ_OPERATOR_QUEUE_JUDGING_SECONDS",
        "CJ_OPERATOR_CALLBACK_MARGIN_MINUTES",
        "CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES",
    ):
        if name in operator_env:
            monkeypatch.setenv(name, operator_env[name]["value"])
        else:
            monkeypatch.delenv(name, raising=False)
    api_ttl = ProviderApiSettings().request_ttl_seconds
    operator = OperatorSettings()
    assert operator.queue_request_ttl_seconds == api_ttl == int(expected)
    assert operator.callback_timeout_seconds == api_ttl + 685 + 300


def test_provider_api_callback_topics_follow_the_operators_topics(
    default_objects: list[Obj],
) -> None:
    env = env_of(containers(one(default_objects, "Deployment", "-provider-api"))[0])
    assert json.loads(env["CJ_API_CALLBACK_TOPICS"]["value"]) == [
        "huleedu.llm_provider.comparison_result.v1"
    ]
    assert json.loads(env["CJ_API_REFUSED_CALLBACK_TOPICS"]["value"]) == []
    assert "CJ_API_CALLBACK_TOPIC_PATTERN" not in env
    objects = render(
        {
            "operator.settings.LLM_PROVIDER_CALLBACK_TOPIC": "team.callbacks",
            "operator.settings.CJ_OPERATOR_COMPLETION_TOPIC": "team.completed",
            "operator.settings.CJ_OPERATOR_DEAD_LETTER_TOPIC": "team.failed",
        }
    )
    env = env_of(containers(one(objects, "Deployment", "-provider-api"))[0])
    assert json.loads(env["CJ_API_CALLBACK_TOPICS"]["value"]) == [
        "huleedu.llm_provider.comparison_result.v1",
        "team.callbacks",
    ]
    assert json.loads(env["CJ_API_REFUSED_CALLBACK_TOPICS"]["value"]) == [
        "team.completed",
        "team.failed",
    ]


SPREAD_BY_NODE = {
    "maxSkew": 1,
    "topologyKey": "kubernetes.io/hostname",
    "whenUnsatisfiable": "ScheduleAnyway",
}


def test_no_topology_spread_by_default_the_schedulers_own_applies(
    default_objects: list[Obj],
) -> None:
    for deployment in of_kind(default_objects, "Deployment"):
        assert "topologySpreadConstraints" not in pod_spec(deployment)


@pytest.mark.parametrize(
    ("component", "suffix"),
    [("operator", "-operator"), ("providerApi", "-provider-api"), ("worker", "-worker")],
)
def test_topology_spread_selects_the_components_own_pods_unless_given(
    component: str, suffix: str
) -> None:
    by_zone = {
        "maxSkew": 2,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"team": "assessment"}},
    }
    objects = render({f"{component}.topologySpreadConstraints": [SPREAD_BY_NODE, by_zone]})
    deployment = one(objects, "Deployment", suffix)
    first, second = pod_spec(deployment)["topologySpreadConstraints"]
    # The Deployment's own selector: its pods, and only this component's.
    assert first == {**SPREAD_BY_NODE, "labelSelector": deployment["spec"]["selector"]}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert first["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert second == by_zone  # a selector of the user's own is kept
    for other in of_kind(objects, "Deployment"):
        if other is not deployment:
            assert "topologySpreadConstraints" not in pod_spec(other)


def test_schema_refuses_an_incomplete_spread_constraint() -> None:
    from tests.support.chart import HelmError

    incomplete = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}
    with pytest.raises(HelmError, match=r"/worker/topologySpreadConstraints/0'.*whenUnsatisfiable"):
        render({"worker.topologySpreadConstraints": [incomplete]})
    with pytest.raises(
        HelmError, match=r"/operator/topologySpreadConstraints/0/whenUnsatisfiable'"
    ):
        render(
            {
                "operator.topologySpreadConstraints": [
                    {**SPREAD_BY_NODE, "whenUnsatisfiable": "Maybe"}
                ]
            }
        )


def test_extra_objects_are_rendered_with_tpl_as_objects_or_strings() -> None:
    as_object = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": '{{ include "cj.fullname" . }}-extra',
            "namespace": "{{ .Release.Namespace }}",
            "labels": {"release": "{{ .Release.Name }}"},
        },
        "data": {"workers": "{{ .Values.worker.replicas }}"},
    }
    as_string = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-extra-secret\n"
        'stringData:\n  api: {{ printf "%s-provider-api" (include "cj.fullname" .) | quote }}\n'
    )
    objects = render({"extraObjects": [as_object, as_string], "worker.replicas": 3}, release="team")
    assert one(objects, "ConfigMap", "-extra") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "team-cj-operator-extra",
            "namespace": "cj-system",
            "labels": {"release": "team"},
        },
        "data": {"workers": "3"},
    }
    secret = one(objects, "Secret", "-extra-secret")
    assert secret["metadata"]["name"] == "team-extra-secret"
    assert secret["stringData"] == {"api": "team-cj-operator-provider-api"}
    # Nothing extra by default.
    assert not [o for o in render() if o["metadata"]["name"].endswith(("-extra", "-extra-secret"))]
