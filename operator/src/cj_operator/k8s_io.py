"""The operator's own Kubernetes API calls: status patches, ConfigMaps, Events, peering.

The `kubernetes` client is synchronous; each call runs in a worker thread so the event loop
(kopf's too) never blocks. `KubeApi` is the seam tests replace.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from cj_operator.essays_source import EssaySourceError
from cj_operator.spec import API_GROUP, API_VERSION, KIND, PLURAL

# kubernetes.config is untyped: these names state what its functions return.
_client_from_kubeconfig: Callable[..., k8s.ApiClient] = k8s_config.new_client_from_config
_load_incluster: Callable[..., None] = k8s_config.load_incluster_config

MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "cj-operator"


@dataclass(frozen=True)
class BatchRef:
    """Which CJBatch an object or Event belongs to."""

    namespace: str
    name: str
    uid: str


class ConfigMapNotOwnedError(Exception):
    """The name of a ConfigMap the operator writes (`<name>-results`, `<name>-comparisons`)
    is taken by a ConfigMap this CJBatch does not own."""


class KubeApi(Protocol):
    """The Kubernetes calls the operator makes outside kopf's handlers."""

    async def patch_status(self, ref: BatchRef, body: dict[str, Any]) -> bool:
        """Merge-patch the CJBatch status; False when the object is gone."""
        ...

    async def read_status(self, ref: BatchRef) -> dict[str, Any] | None:
        """The CJBatch's current status (None when the object is gone)."""
        ...

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data (binaryData decoded as UTF-8 too); None when it does not exist.

        Raises EssaySourceError naming the key when a binaryData value is not UTF-8 (kubectl
        puts a file that is not UTF-8, e.g. a spreadsheet's UTF-16 export, in binaryData).
        """
        ...

    async def write_config_map(self, ref: BatchRef, name: str, data: dict[str, str]) -> None:
        """Create or replace the ConfigMap `name` (results, comparisons), owned by the CJBatch.

        Raises ConfigMapNotOwnedError when a ConfigMap of that name exists and is not owned
        by this CJBatch (it is never overwritten).
        """
        ...

    async def post_event(self, ref: BatchRef, kind: str, reason: str, message: str) -> None:
        """Post a Kubernetes Event (`kind` Normal or Warning) about the CJBatch."""
        ...

    async def read_peering(self, name: str) -> dict[str, Any] | None:
        """The ClusterKopfPeering object `name` (None when missing)."""
        ...


def api_client(kubeconfig: Path | None) -> k8s.ApiClient:
    """A client from `kubeconfig`, else the in-cluster service account, else ~/.kube/config."""
    if kubeconfig is not None:
        return _client_from_kubeconfig(config_file=str(kubeconfig))
    try:
        configuration = k8s.Configuration()
        _load_incluster(client_configuration=configuration)
        return k8s.ApiClient(configuration)
    except k8s_config.ConfigException:
        return _client_from_kubeconfig()


class KubernetesApi:
    """`KubeApi` over the official client (calls run in threads)."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self._api = api
        self._custom = k8s.CustomObjectsApi(api)
        self._core = k8s.CoreV1Api(api)

    async def patch_status(self, ref: BatchRef, body: dict[str, Any]) -> bool:
        def call() -> bool:
            try:
                self._custom.patch_namespaced_custom_object_status(
                    API_GROUP,
                    API_VERSION,
                    ref.namespace,
                    PLURAL,
                    ref.name,
                    body,
                    _content_type=MERGE_PATCH,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return await asyncio.to_thread(call)

    async def read_status(self, ref: BatchRef) -> dict[str, Any] | None:
        def call() -> dict[str, Any] | None:
            try:
                obj = self._custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            if not isinstance(obj, dict):
                return None
            if obj.get("metadata", {}).get("uid") != ref.uid:
                return None
            status = obj.get("status") or {}
            return status if isinstance(status, dict) else {}

        return await asyncio.to_thread(call)

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        def call() -> dict[str, str] | None:
            try:
                cm = self._core.read_namespaced_config_map(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            data = dict(cm.data or {})
            for key, value in (cm.binary_data or {}).items():
                try:
                    data[key] = base64.b64decode(value).decode("utf-8")
                except UnicodeDecodeError as err:
                    raise EssaySourceError(
                        f"configmap/{name} key {key}: binaryData is not UTF-8 text "
                        f"({err.reason} at byte {err.start}); save the file as UTF-8"
                    ) from None
            return data

        return await asyncio.to_thread(call)

    async def write_config_map(self, ref: BatchRef, name: str, data: dict[str, str]) -> None:
        body = k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(
                name=name,
                namespace=ref.namespace,
                labels={
                    "app.kubernetes.io/managed-by": COMPONENT,
                    "cj.huleedu.io/batch": ref.name,
                },
                owner_references=[
                    k8s.V1OwnerReference(
                        api_version=f"{API_GROUP}/{API_VERSION}",
                        kind=KIND,
                        name=ref.name,
                        uid=ref.uid,
                        controller=True,
                        block_owner_deletion=False,
                    )
                ],
            ),
            data=data,
        )

        def call() -> None:
            try:
                self._core.create_namespaced_config_map(ref.namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                existing = self._core.read_namespaced_config_map(name, ref.namespace)
                owners = (existing.metadata and existing.metadata.owner_references) or []
                if not any(owner.uid == ref.uid for owner in owners):
                    raise ConfigMapNotOwnedError(
                        f"configmap/{name} already exists and is not owned by this CJBatch; "
                        "it was left as it is and nothing was written there (the data is in "
                        "PostgreSQL; rename or delete that ConfigMap)"
                    ) from None
                self._core.replace_namespaced_config_map(name, ref.namespace, body)

        await asyncio.to_thread(call)

    async def post_event(self, ref: BatchRef, kind: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        body = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=k8s.V1ObjectReference(
                api_version=f"{API_GROUP}/{API_VERSION}",
                kind=KIND,
                name=ref.name,
                namespace=ref.namespace,
                uid=ref.uid,
            ),
            reason=reason,
            message=message[:1024],
            type=kind,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
        )

        def call() -> None:
            self._core.create_namespaced_event(ref.namespace, body)

        await asyncio.to_thread(call)

    async def read_peering(self, name: str) -> dict[str, Any] | None:
        def call() -> dict[str, Any] | None:
            try:
                obj = self._custom.get_cluster_custom_object(
                    "kopf.dev", "v1", "clusterkopfpeerings", name
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return obj if isinstance(obj, dict) else None

        return await asyncio.to_thread(call)
