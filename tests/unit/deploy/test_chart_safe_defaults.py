"""The chart's safe defaults (issue 11), on `helm template` output: the provider API's bearer
token on (a generated Secret read by the API and the operator), NetworkPolicies on (the API
reachable from the operator pods only), the test judges off unless enabled."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.support.chart import (
    ALL_ON_VALUES,
    HelmError,
    Obj,
    containers,
    env_of,
    of_kind,
    one,
    render,
)

GENERATED = "cj-cj-operator-provider-api-token"


def _env(objects: list[Obj], suffix: str) -> dict[str, Obj]:
    return env_of(containers(one(objects, "Deployment", suffix))[0])


def _token_refs(objects: list[Obj]) -> dict[str, object]:
    api = _env(objects, "-provider-api").get("CJ_API_AUTH_TOKEN")
    operator = _env(objects, "-operator").get("CJ_OPERATOR_PROVIDER_API_TOKEN")
    return {
        "api": api and api["valueFrom"]["secretKeyRef"],
        "operator": operator and operator["valueFrom"]["secretKeyRef"],
    }


def test_by_default_a_generated_token_secret_is_read_by_the_api_and_the_operator() -> None:
    objects = render()
    secret = one(objects, "Secret")
    assert secret["metadata"]["name"] == GENERATED
    assert secret["type"] == "Opaque"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token), token
    ref = {"name": GENERATED, "key": "token"}
    assert _token_refs(objects) == {"api": ref, "operator": ref}
    # helm template cannot look the live Secret up: every render draws a new random token.
    again = base64.b64decode(one(render(), "Secret")["data"]["token"]).decode()
    assert again != token


def test_a_named_secret_replaces_the_generated_one() -> None:
    objects = render(
        {"providerApi.authToken.existingSecret": "team-token", "providerApi.authToken.key": "t"}
    )
    assert not of_kind(objects, "Secret")
    ref = {"name": "team-token", "key": "t"}
    assert _token_refs(objects) == {"api": ref, "operator": ref}
    # Without a named Secret the key names the generated Secret's entry.
    secret = one(render({"providerApi.authToken.key": "bearer"}), "Secret")
    assert set(secret["data"]) == {"bearer"}


def test_authentication_off_only_when_asked_for() -> None:
    objects = render({"providerApi.authToken.enabled": False})
    assert not of_kind(objects, "Secret")
    assert _token_refs(objects) == {"api": None, "operator": None}
    # Turning it off wins over a named Secret too (nothing half-configured).
    named = render(
        {"providerApi.authToken.enabled": False, "providerApi.authToken.existingSecret": "x"}
    )
    assert _token_refs(named) == {"api": None, "operator": None}


def _labels(objects: list[Obj], suffix: str) -> dict[str, str]:
    labels: dict[str, str] = one(objects, "Deployment", suffix)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_by_default_the_api_admits_only_the_operator_pods_and_the_helm_test_pod() -> None:
    objects = render()
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")}
    assert set(policies) == {
        "cj-cj-operator-provider-api",
        "cj-cj-operator-operator",
        "cj-cj-operator-worker",
    }
    api = policies["cj-cj-operator-provider-api"]
    pods = {s: _labels(objects, s) for s in ("-provider-api", "-operator", "-worker")}
    # The policy's pods are the API's and nobody else's.
    assert _selects(api["podSelector"]["matchLabels"], pods["-provider-api"])
    assert not _selects(api["podSelector"]["matchLabels"], pods["-operator"])
    assert not _selects(api["podSelector"]["matchLabels"], pods["-worker"])
    test_pod = one(objects, "Pod", "-test")["metadata"]["labels"]
    (rule,) = api["ingress"]
    operator_peer, test_peer = rule["from"]
    for peer in (operator_peer, test_peer):
        assert set(peer) == {"podSelector"}  # same namespace, no namespaceSelector, no ipBlock
        assert not _selects(peer["podSelector"]["matchLabels"], pods["-worker"])
        assert not _selects(peer["podSelector"]["matchLabels"], pods["-provider-api"])
    assert _selects(operator_peer["podSelector"]["matchLabels"], pods["-operator"])
    assert not _selects(operator_peer["podSelector"]["matchLabels"], test_pod)
    assert _selects(test_peer["podSelector"]["matchLabels"], test_pod)
    assert not _selects(test_peer["podSelector"]["matchLabels"], pods["-operator"])
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    # Without the test pod the API admits the operator alone.
    (rule,) = one(render({"tests.enabled": False}), "NetworkPolicy", "-provider-api")["spec"][
        "ingress"
    ]
    assert rule["from"] == [operator_peer]
    # Operator and workers: their metrics port only, from any source (no metricsFrom).
    for name, suffix in (("operator", "-operator"), ("worker", "-worker")):
        spec = policies[f"cj-cj-operator-{name}"]
        assert _selects(spec["podSelector"]["matchLabels"], pods[suffix])
        assert spec["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]


def test_network_policies_can_be_turned_off() -> None:
    assert not of_kind(render({"networkPolicy.enabled": False}), "NetworkPolicy")


def test_a_service_monitor_needs_the_prometheus_in_metrics_from() -> None:
    with pytest.raises(HelmError, match=r"list your Prometheus in networkPolicy.metricsFrom"):
        render({"metrics.serviceMonitor.enabled": True})
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    objects = render({"metrics.serviceMonitor.enabled": True, "networkPolicy.metricsFrom": [peer]})
    (rule,) = one(objects, "NetworkPolicy", "-provider-api")["spec"]["ingress"]
    assert rule["from"][2:] == [peer]  # after the operator and the helm test pod
    assert one(objects, "ServiceMonitor")
    assert one(
        render({"metrics.serviceMonitor.enabled": True, "networkPolicy.enabled": False}),
        "ServiceMonitor",
    )


def test_test_judges_are_off_by_default_for_the_api_and_the_workers() -> None:
    objects = render()
    expected = ["anthropic", "openai", "openai_compatible", "offline"]
    for suffix in ("-provider-api", "-worker"):
        assert json.loads(_env(objects, suffix)["CJ_ENABLED_PROVIDERS"]["value"]) == expected
    enabled = render({"enabledProviders": ["offline", "mock"], "worker.defaultProvider": "mock"})
    for suffix in ("-provider-api", "-worker"):
        assert json.loads(_env(enabled, suffix)["CJ_ENABLED_PROVIDERS"]["value"]) == [
            "offline",
            "mock",
        ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"worker.defaultProvider": "mock"},
            r'worker.defaultProvider "mock" is not in enabledProviders '
            r"\[anthropic openai openai_compatible offline\]",
        ),
        ({"enabledProviders": []}, r"/enabledProviders': minItems"),
        ({"enabledProviders": ["gemini"]}, r"/enabledProviders/0': value must be one of"),
        ({"enabledProviders": ["mock", "mock"]}, r"/enabledProviders': items at 0 and 1"),
    ],
)
def test_bad_judge_values_are_refused_naming_the_key(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(HelmError, match=message):
        render(values)


def test_the_all_on_values_read_their_named_token_secret() -> None:
    objects = render(values_files=[ALL_ON_VALUES])
    ref = {"name": "cj-api-token", "key": "token"}
    assert _token_refs(objects) == {"api": ref, "operator": ref}
