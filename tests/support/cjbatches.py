"""CJBatch objects on the real kube-apiserver, read the way a user sees them.

Create, patch, delete and poll CJBatches of one namespace, read their conditions, Events and
results ConfigMap. Waits fail with the tail of the stack's logs, so a stuck batch shows why.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from cj_operator.results import results_config_map_name
from cj_operator.spec import API_GROUP, API_VERSION, PLURAL
from tests.support.stack import Stack

TERMINAL = ("Completed", "Failed", "Cancelled")


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A CJBatch object named `name` with `spec` (no namespace)."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "CJBatch",
        "metadata": {"name": name},
        "spec": spec,
    }


def batch_manifest(name: str, spec: dict[str, Any]) -> str:
    """A CJBatch manifest for `kubectl apply -f -`, as JSON: YAML would let an essay id such as
    `0e12345` be read as a number."""
    return json.dumps(manifest(name, spec))


def phase(obj: dict[str, Any]) -> str | None:
    """`status.phase` of a CJBatch object (None before the operator wrote one)."""
    return cast(str | None, (obj.get("status") or {}).get("phase"))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The status condition of type `kind` ({} when absent)."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return cast(dict[str, Any], c)
    return {}


class Batches:
    """CJBatch objects of one namespace on the real API server."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        self.custom = k8s_client.CustomObjectsApi(api)
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, manifest(name, spec)
            ),
        )

    def get(self, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION, self.namespace, PLURAL, name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )

    def status(self, name: str) -> dict[str, Any]:
        obj = self.get(name) or {}
        return cast(dict[str, Any], obj.get("status") or {})

    def events(self, name: str) -> list[str]:
        """Reasons of the Kubernetes Events about the object."""
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [e.reason or "" for e in found.items]

    def results_rows(self, name: str) -> list[dict[str, Any]]:
        """The rows of `results.json` in the batch's results ConfigMap (which has a CSV too)."""
        cm: Any = self.core.read_namespaced_config_map(
            results_config_map_name(name), self.namespace
        )
        assert "results.csv" in cm.data
        rows: list[dict[str, Any]] = json.loads(cm.data["results.json"])
        return rows

    def results_summary(self, name: str) -> dict[str, Any]:
        """`summary.json` of the batch's results ConfigMap (reliabilities, order effect, judges)."""
        cm: Any = self.core.read_namespaced_config_map(
            results_config_map_name(name), self.namespace
        )
        summary: dict[str, Any] = json.loads(cm.data["summary.json"])
        return summary

    def wait(
        self,
        name: str,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        stack: Stack,
        within: float = 90.0,
    ) -> dict[str, Any]:
        """Poll the object until `check(object)` holds; AssertionError with the stack's logs
        when `within` s pass or the stack's operator exits."""
        deadline = time.monotonic() + within
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.get(name)
            if last is not None and check(last):
                return last
            if stack.operator is not None and not stack.operator.alive():
                raise AssertionError(f"operator exited waiting for {what}:\n{stack.logs()}")
            time.sleep(0.2)
        status = (last or {}).get("status")
        raise AssertionError(f"no {what} after {within} s; status={status}\n{stack.logs()}")

    def wait_gone(self, name: str, stack: Stack, within: float = 60.0) -> None:
        """Poll until the object no longer exists (its finalizer released)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.get(name) is None:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} still exists after {within} s\n{stack.logs()}")

    async def wait_terminal(self, name: str, stack: Stack, within: float) -> dict[str, Any]:
        """Poll (every second, without blocking the event loop) until the phase is terminal;
        returns the object, AssertionError with the status and logs after `within` s."""
        deadline = time.monotonic() + within
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(name) or {}
            if phase(obj) in TERMINAL:
                return obj
            await asyncio.sleep(1.0)
        raise AssertionError(
            f"cjbatch {name} not finished after {within} s; status "
            f"{json.dumps(obj.get('status', {}), indent=1)}\n{stack.logs()}"
        )
