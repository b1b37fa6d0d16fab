"""values.yaml, values.schema.json and the README, and the env vars the chart sets."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from cj_operator.dependency_check import CheckSettings
from cj_operator.settings import OperatorSettings
from cj_workers.settings import ProviderApiSettings, TopicBootstrapSettings, WorkerSettings
from deploy import chart_readme, values_schema
from deploy.values_schema import env_names
from tests.support.chart import (
    ALL_ON_VALUES,
    CHART_DIR,
    HelmError,
    containers,
    one,
    render,
    workloads,
)

# Variables the chart adds for Kubernetes' $(VAR) expansion into a URL; no process reads them.
EXPANSION_ONLY = {"DATABASE_PASSWORD", "REDIS_PASSWORD"}
SETTINGS_OF_CONTAINER: dict[str, type[BaseSettings]] = {
    "operator": OperatorSettings,
    "migrate": OperatorSettings,
    "provider-api": ProviderApiSettings,
    "worker": WorkerSettings,
    "bootstrap-topics": TopicBootstrapSettings,
    "check": CheckSettings,  # the `helm test` pod's cj-check
}


@pytest.mark.parametrize("which", ["default", "all-on"])
def test_every_env_var_the_chart_sets_is_read_by_that_process(which: str) -> None:
    objects = render(values_files=[ALL_ON_VALUES] if which == "all-on" else [])
    seen: set[str] = set()
    for workload in workloads(objects):
        for container in containers(workload):
            known = env_names(SETTINGS_OF_CONTAINER[container["name"]]) | EXPANSION_ONLY
            names = [e["name"] for e in container["env"]]
            assert len(names) == len(set(names)), f"duplicate env in {container['name']}"
            unknown = set(names) - known
            assert not unknown, f"{container['name']} does not read {sorted(unknown)}"
            seen.add(container["name"])
    assert seen >= {"operator", "migrate", "provider-api", "worker", "check"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"worker.settings": {"CJ_WORKER_CONCURENCY": "4"}},
            r"/worker/settings': additional properties 'CJ_WORKER_CONCURENCY' not allowed",
        ),
        # Set by the chart from other values: a second entry would silently win.
        (
            {"operator.settings": {"DATABASE_URL": "postgresql://x"}},
            r"/operator/settings': additional properties 'DATABASE_URL' not allowed",
        ),
        (
            {"providerApi.settings": {"CJ_WORKER_CONCURRENCY": "4"}},
            r"/providerApi/settings': additional properties 'CJ_WORKER_CONCURRENCY' not allowed",
        ),
    ],
)
def test_a_setting_the_process_does_not_read_is_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(HelmError, match=message):
        render(values)


def test_settings_maps_admit_every_free_variable_of_the_process() -> None:
    for component, settings in values_schema.SETTINGS_CLASS.items():
        chart_set = values_schema.CHART_SET[component]
        assert chart_set <= env_names(settings), sorted(chart_set - env_names(settings))
        free = values_schema.settable(component)
        assert free and not set(free) & chart_set
        # One of them, through helm, reaches the container.
        objects = render({f"{component}.settings": {free[0]: "1"}})
        suffix = {"operator": "-operator", "providerApi": "-provider-api", "worker": "-worker"}
        (container,) = containers(one(objects, "Deployment", suffix[component]))
        assert {"name": free[0], "value": "1"} in container["env"]


def test_chart_set_lists_exactly_what_the_templates_set() -> None:
    objects = render(values_files=[ALL_ON_VALUES])
    user = {
        "operator": {
            "BATCH_TIMEOUT_HOURS",
            "CJ_OPERATOR_RETENTION_ON_DELETE",
            "CJ_OPERATOR_DB_POOL_SIZE",
        },
        "providerApi": {"CJ_API_MAX_ESSAY_CHARS"},
        "worker": {"CJ_WORKER_RATE_LIMITS"},
    }
    suffix = {"operator": "-operator", "providerApi": "-provider-api", "worker": "-worker"}
    for component, chart_set in values_schema.CHART_SET.items():
        (container,) = containers(one(objects, "Deployment", suffix[component]))
        set_by_templates = {e["name"] for e in container["env"]} - user[component] - EXPANSION_ONLY
        # KUBECONFIG is never set in a pod (the in-cluster account is used) but must stay
        # reserved; everything else the templates set is listed, and nothing more.
        assert set_by_templates == chart_set - {"KUBECONFIG"}, component


def test_values_schema_is_current() -> None:
    assert (CHART_DIR / "values.schema.json").read_text() == values_schema.render(), (
        "values.schema.json is stale: run .venv/bin/python -m deploy.values_schema"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bogus": 1}, r"additional properties 'bogus' not allowed"),
        ({"worker.concurrency": 0}, r"/worker/concurrency': minimum: got 0, want 1"),
        ({"worker.defaultProvider": "gpt"}, r"/worker/defaultProvider': value must be one of"),
        ({"logging.level": "TRACE"}, r"/logging/level': value must be one of"),
        ({"redis.port": 70000}, r"/redis/port': maximum"),
        ({"kafka.bootstrapServers": "kafka"}, r"/kafka/bootstrapServers': .*does not match"),
        ({"migrations.mode": "helm"}, r"/migrations/mode': value must be one of"),
        ({"metrics.serviceMonitor.interval": "30 seconds"}, r"/metrics/serviceMonitor/interval'"),
        ({"operator.image.digest": "latest"}, r"/operator/image/digest'"),
        ({"operator.replicas": 2}, r"/operator/peering/enabled': value must be true"),
        (
            {"worker.autoscaling.keda.enabled": True, "worker.autoscaling.hpa.enabled": True},
            r"/worker/autoscaling/hpa/enabled': value must be false",
        ),
        (
            {"database.password.existingSecret": ""},
            r"/database/password/existingSecret': minLength: got 0, want 1",
        ),
        ({"worker.defaultModels": {"gemini": "x"}}, r"/worker/defaultModels'"),
        ({"kafka.topics.names": ["bad topic"]}, r"/kafka/topics/names/0'"),
        ({"operator.watchNamespaces": ["Team_A"]}, r"/operator/watchNamespaces/0'"),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(HelmError, match=message):
        render(values)


def test_every_value_is_documented_and_the_readme_is_current() -> None:
    values_text = (CHART_DIR / "values.yaml").read_text()
    docs = chart_readme.parse_values(values_text)
    assert len(docs) > 100
    readme = (CHART_DIR / "README.md").read_text()
    assert readme == chart_readme.render_readme(readme, values_text), (
        "charts/cj-operator/README.md is stale: run .venv/bin/python -m deploy.chart_readme"
    )
    for doc in docs:
        assert f"| `{doc.path}` |" in readme


def test_an_undocumented_value_is_reported() -> None:
    text = "a:\n  # -- documented\n  b: 1\n  c: 2\n"
    with pytest.raises(chart_readme.UndocumentedValueError, match=r"a\.c"):
        chart_readme.parse_values(text)


def test_every_schema_property_is_in_values_yaml() -> None:
    import json

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    documented = {
        d.path for d in chart_readme.parse_values((CHART_DIR / "values.yaml").read_text())
    }

    def leaves(node: dict[str, object], prefix: str) -> set[str]:
        out: set[str] = set()
        props = node.get("properties")
        if not isinstance(props, dict):
            return {prefix}
        for key, sub in props.items():
            path = f"{prefix}.{key}" if prefix else key
            if path in documented or key == "global":
                out.add(path)
            else:
                assert isinstance(sub, dict)
                out |= leaves(sub, path)
        return out

    missing = {p for p in leaves(schema, "") if p not in documented and p != "global"}
    assert not missing, f"schema properties with no value in values.yaml: {sorted(missing)}"


def test_values_comments_name_real_env_vars() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    mentioned = set(re.findall(r"\(((?:CJ_|KAFKA_|REDIS_|DATABASE_)[A-Z0-9_]+)", text))
    known = set().union(*(env_names(s) for s in SETTINGS_OF_CONTAINER.values()))
    assert mentioned, "values.yaml should name the variables its keys set"
    assert mentioned <= known, sorted(mentioned - known)
