"""The `helm test` pod: a test hook running cj-check with the release's own connection
settings, admitted by the provider API's NetworkPolicy and selected by nothing else."""

from __future__ import annotations

import json

import pytest

from cj_operator.dependency_check import CheckSettings
from cj_operator.settings import OperatorSettings
from tests.support.chart import ALL_ON_VALUES, Obj, containers, env_of, of_kind, one, render


def _check_env(objects: list[Obj]) -> dict[str, Obj]:
    (container,) = containers(one(objects, "Pod", "-test"))
    return env_of(container)


def _selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return match_labels.items() <= labels.items()


def _peer_selects(peer: Obj, labels: dict[str, str]) -> bool:
    """A same-namespace podSelector peer whose matchLabels select `labels`."""
    if set(peer) != {"podSelector"}:
        return False
    return _selects(peer["podSelector"]["matchLabels"], labels)


def test_a_test_hook_running_cj_check_from_the_operator_image_deleted_when_it_passed() -> None:
    objects = render()
    pod = one(objects, "Pod", "-test")
    assert pod["metadata"]["name"] == "cj-cj-operator-test"
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    assert annotations["helm.sh/hook-delete-policy"].split(",") == [
        "before-hook-creation",
        "hook-succeeded",
    ]
    # helm prints the output before it deletes a passed pod (`helm test --logs` comes too late).
    assert sorted(annotations["helm.sh/hook-output-log-policy"].split(",")) == [
        "hook-failed",
        "hook-succeeded",
    ]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"  # a failed check fails the pod, and the test
    assert spec["automountServiceAccountToken"] is False
    (container,) = containers(pod)
    operator = containers(one(objects, "Deployment", "-operator"))[0]
    assert container["command"] == ["cj-check"]
    assert container["image"] == operator["image"] == "cj-operator:0.1.0"
    # The pod has no business in the release's Services, PDBs or Deployments.
    labels = pod["metadata"]["labels"]
    for service in of_kind(objects, "Service"):
        assert not _selects(service["spec"]["selector"], labels)
    for kind in ("PodDisruptionBudget", "Deployment"):
        for obj in of_kind(objects, kind):
            assert not _selects(obj["spec"]["selector"]["matchLabels"], labels)


def test_tests_can_be_left_out() -> None:
    assert not of_kind(render({"tests.enabled": False}), "Pod")


def test_the_api_policy_admits_the_test_pod_on_the_api_port() -> None:
    objects = render()
    labels = one(objects, "Pod", "-test")["metadata"]["labels"]
    policies = of_kind(objects, "NetworkPolicy")
    admitting = [
        (p["metadata"]["name"], rule["ports"])
        for p in policies
        for rule in p["spec"]["ingress"]
        if any(_peer_selects(peer, labels) for peer in rule.get("from", []))
    ]
    assert admitting == [("cj-cj-operator-provider-api", [{"port": "http", "protocol": "TCP"}])]
    # No policy selects the test pod itself: its own ingress stays open (it serves nothing).
    for p in policies:
        assert not _selects(p["spec"]["podSelector"]["matchLabels"], labels)


@pytest.mark.parametrize("which", ["default", "all-on"])
def test_it_checks_what_the_operator_and_workers_use(which: str) -> None:
    objects = render(values_files=[ALL_ON_VALUES] if which == "all-on" else [])
    check = _check_env(objects)
    operator = env_of(containers(one(objects, "Deployment", "-operator"))[0])
    worker = env_of(containers(one(objects, "Deployment", "-worker"))[0])
    for name in ("DATABASE_PASSWORD", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        assert check[name] == operator[name], name
    for name in ("REDIS_URL", "REDIS_PASSWORD"):
        assert check.get(name) == worker.get(name), name
    assert (
        check["CJ_CHECK_PROVIDER_API_URL"]["value"]
        == (operator["CJ_OPERATOR_PROVIDER_API_URL"]["value"])
    )


def test_its_topics_are_the_operators_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLM_PROVIDER_CALLBACK_TOPIC", "CJ_OPERATOR_COMPLETION_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    defaults = OperatorSettings()
    topics = json.loads(_check_env(render())["CJ_CHECK_KAFKA_TOPICS"]["value"])
    assert topics == [defaults.callback_topic, defaults.completion_topic]
    named = render(
        {
            "operator.settings.LLM_PROVIDER_CALLBACK_TOPIC": "team.callbacks",
            "operator.settings.CJ_OPERATOR_COMPLETION_TOPIC": "team.completed",
            "operator.providerApiUrl": "http://api.example:8080",
            "tests.timeoutSeconds": 3,
        }
    )
    env = _check_env(named)
    assert json.loads(env["CJ_CHECK_KAFKA_TOPICS"]["value"]) == ["team.callbacks", "team.completed"]
    # What cj-check makes of the rendered variables.
    for name in ("CJ_CHECK_KAFKA_TOPICS", "CJ_CHECK_PROVIDER_API_URL", "CJ_CHECK_TIMEOUT_SECONDS"):
        monkeypatch.setenv(name, env[name]["value"])
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://cj:pw@postgresql:5432/cj")
    settings = CheckSettings()
    assert settings.kafka_topics == ["team.callbacks", "team.completed"]
    assert settings.provider_api_url == "http://api.example:8080"
    assert settings.timeout_seconds == 3
