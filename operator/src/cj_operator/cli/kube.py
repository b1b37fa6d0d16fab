"""Kubernetes access for cjctl, with errors a user can act on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL

T = TypeVar("T")

CRD_MISSING = "the CJBatch CRD is not installed here (kubectl apply -f crds/cjbatch.yaml)"


class KubeError(RuntimeError):
    """A Kubernetes call failed; the message says what failed and, where known, what to do."""


class ObjectNotFoundError(KubeError):
    """The object the call named does not exist (a 404 naming it)."""


def connect(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    """An API client from `kubeconfig` (else $KUBECONFIG or ~/.kube/config, else in-cluster).

    Raises KubeError when no configuration is usable.
    """
    try:
        return cast(
            client.ApiClient, config.new_client_from_config(config_file=kubeconfig, context=context)
        )
    except (ConfigException, FileNotFoundError) as err:
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config()
                return client.ApiClient()
            except ConfigException:
                pass
        raise KubeError(f"no usable kubeconfig: {err} (set KUBECONFIG or --kubeconfig)") from None


def _status_body(err: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(err.body or "{}")
    except ValueError:
        return {"message": str(err.body)}
    return body if isinstance(body, dict) else {"message": str(body)}


def call(api: client.ApiClient, what: str, fn: Callable[[], T], not_found: str | None = None) -> T:
    """Run one API call, turning failures into KubeError.

    An unreachable server names the API URL; a 404 for a missing object raises
    ObjectNotFoundError (its message `not_found` when given); a 404 for a missing resource
    type says the CRD is not installed.
    """
    try:
        return fn()
    except urllib3.exceptions.HTTPError as err:
        host = api.configuration.host
        raise KubeError(f"cannot reach the Kubernetes API at {host} ({what}): {err}") from None
    except ApiException as err:
        body = _status_body(err)
        if err.status == 404:
            names_an_object = bool(body.get("details", {}).get("name"))
            if not names_an_object:
                raise KubeError(f"{what}: {CRD_MISSING}") from None
            message = f"{what}: {err.status} {err.reason}: {body.get('message', '')}"
            raise ObjectNotFoundError(message if not_found is None else not_found) from None
        raise KubeError(f"{what}: {err.status} {err.reason}: {body.get('message', '')}") from None


def get_batch(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The CJBatch object as a dict; KubeError when it does not exist."""
    custom = client.CustomObjectsApi(api)
    obj = call(
        api,
        f"get cjbatch {name}",
        lambda: custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, name
        ),
        not_found=f"cjbatch {name!r} not found in namespace {namespace!r}",
    )
    return cast(dict[str, Any], obj)


def find_config_map(api: client.ApiClient, namespace: str, name: str) -> client.V1ConfigMap | None:
    """The ConfigMap `name`, or None when it does not exist; KubeError when the call fails."""
    core = client.CoreV1Api(api)
    try:
        return call(
            api, f"get configmap {name}", lambda: core.read_namespaced_config_map(name, namespace)
        )
    except ObjectNotFoundError:
        return None


def list_batches(api: client.ApiClient, namespace: str | None) -> list[dict[str, Any]]:
    """CJBatches in `namespace`, or in all namespaces when None."""
    custom = client.CustomObjectsApi(api)
    if namespace is None:
        result = call(
            api,
            "list cjbatches",
            lambda: custom.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL),
        )
    else:
        result = call(
            api,
            "list cjbatches",
            lambda: custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL),
        )
    return cast(list[dict[str, Any]], cast(dict[str, Any], result).get("items", []))


def context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig's `context` (or current context); `default` if unset
    or when there is no kubeconfig (in-cluster)."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, FileNotFoundError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")
