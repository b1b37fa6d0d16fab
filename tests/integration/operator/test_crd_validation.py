"""The CRD's schema and CEL rules on the real API server agree with the pydantic spec model."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL, CJBatchSpec
from tests.support.spec_cases import INVALID, VALID, Case, base_spec, with_changes

pytestmark = pytest.mark.usefixtures("cjbatch_crd")


def _body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "CJBatch",
        "metadata": {"name": name},
        "spec": spec,
    }


def _create(
    api: k8s_client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    result = api.create_namespaced_custom_object(
        API_GROUP,
        API_VERSION,
        namespace,
        PLURAL,
        _body(name, spec),
        field_validation="Strict",
        **kw,
    )
    return cast(dict[str, Any], result)


def _rejection(call: Any) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status in (400, 422), err.value.body
    return str(json.loads(err.value.body or "{}")["message"])


@pytest.fixture
def api(k8s_api: k8s_client.ApiClient) -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(k8s_api)


def test_valid_examples_are_accepted_and_defaulted(
    api: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    for i, case in enumerate(VALID):
        created = _create(api, namespace, f"valid-{i}", case.spec, dry_run="All")
        # The server's defaults are the model's defaults.
        expected = CJBatchSpec.model_validate(case.spec).model_dump(
            by_alias=True, exclude_none=True
        )
        assert created["spec"] == expected, case.name


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_invalid_examples_are_rejected_with_their_message(
    api: k8s_client.CustomObjectsApi, namespace: str, case: Case
) -> None:
    message = _rejection(lambda: _create(api, namespace, "invalid", case.spec, dry_run="All"))
    expected = case.message if case.message is not None else case.field
    assert expected is not None
    assert expected in message, message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"essays": [{"id": "e1", "text": "changed"}, {"id": "e2", "text": "b"}]},
            "spec.essays is immutable after creation",
        ),
        (
            {"essays": None, "essaysFrom": [{"configMap": "cm"}]},
            "spec.essays is immutable after creation",
        ),
        (
            {"assignment": {"prompt": "Another prompt"}},
            "spec.assignment is immutable after creation",
        ),
        ({"judge": {"provider": "mock"}}, "spec.judge is immutable after creation"),
    ],
)
def test_what_is_compared_is_immutable(
    api: k8s_client.CustomObjectsApi, namespace: str, change: dict[str, Any], message: str
) -> None:
    created = _create(api, namespace, "immutable", base_spec())
    updated = copy.deepcopy(created)
    for key, value in change.items():
        if value is None:
            updated["spec"].pop(key)
        else:
            updated["spec"][key] = value
    got = _rejection(
        lambda: api.replace_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, "immutable", updated
        )
    )
    assert message in got


def test_run_settings_may_change(api: k8s_client.CustomObjectsApi, namespace: str) -> None:
    _create(api, namespace, "mutable", base_spec())
    patched = api.patch_namespaced_custom_object(
        API_GROUP,
        API_VERSION,
        namespace,
        PLURAL,
        "mutable",
        {
            "spec": {
                "suspend": True,
                "comparisons": {"maxTotal": 7},
                "limits": {"maxRetries": 1, "timeout": "2h"},
                "stopping": {"reliabilityTarget": 0.9},
            }
        },
    )
    assert isinstance(patched, dict)
    assert patched["spec"]["suspend"] is True
    assert patched["spec"]["comparisons"] == {"targetPerEssay": 10, "maxTotal": 7}
    assert patched["metadata"]["generation"] == 2
    CJBatchSpec.model_validate(patched["spec"])


def test_spec_from_configmaps_round_trips(api: k8s_client.CustomObjectsApi, namespace: str) -> None:
    spec = with_changes(essays=None, essaysFrom=[{"configMap": "essays-a", "key": "a.csv"}])
    created = _create(api, namespace, "from-cm", spec)
    model = CJBatchSpec.model_validate(created["spec"])
    assert model.essays_from is not None
    assert model.essays_from[0].config_map == "essays-a"
