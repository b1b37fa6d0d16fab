"""Bad-input suite, CJBatch specs on the real kube-apiserver: each hostile spec is refused with a
message naming the field, nothing is stored, and a valid batch under the same name is accepted
right after (the rejection leaves nothing behind that blocks good work)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL
from tests.support.spec_cases import HOSTILE, OPERATOR_REFUSED, Case, base_spec

pytestmark = pytest.mark.usefixtures("cjbatch_crd")


def _create(
    api: k8s_client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "CJBatch",
        "metadata": {"name": name},
        "spec": spec,
    }
    created = api.create_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, body, field_validation="Strict"
    )
    return cast(dict[str, Any], created)


def _names(api: k8s_client.CustomObjectsApi, namespace: str) -> list[str]:
    listed = cast(
        dict[str, Any],
        api.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL),
    )
    return [item["metadata"]["name"] for item in listed["items"]]


@pytest.fixture
def api(k8s_api: k8s_client.ApiClient) -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(k8s_api)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_a_hostile_spec_is_refused_naming_the_field_and_stores_nothing(
    api: k8s_client.CustomObjectsApi, namespace: str, case: Case
) -> None:
    with pytest.raises(ApiException) as err:
        _create(api, namespace, "hostile", case.spec)
    assert err.value.status in (400, 422), err.value.body
    message = str(json.loads(err.value.body or "{}")["message"])
    expected = case.message if case.message is not None else case.field
    assert expected is not None and expected in message, message
    assert _names(api, namespace) == []

    created = _create(api, namespace, "hostile", base_spec())
    assert created["metadata"]["generation"] == 1
    assert _names(api, namespace) == ["hostile"]


def test_metadata_the_api_server_cannot_see_into_is_stored_for_the_operator_to_refuse(
    api: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    """The documented gap: metadata is free-form, so a NUL inside it passes the API server;
    the operator's model refuses it (tests/unit/bad_input), and the process test shows the
    batch reported and the next one completed."""
    for i, case in enumerate(OPERATOR_REFUSED):
        created = _create(api, namespace, f"meta-{i}", case.spec)
        assert created["spec"]["essays"][0]["metadata"] == case.spec["essays"][0]["metadata"]
    assert len(_names(api, namespace)) == len(OPERATOR_REFUSED)
