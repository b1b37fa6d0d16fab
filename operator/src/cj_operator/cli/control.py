"""`cjctl suspend|resume|cancel NAME`: change a running batch through its spec.

Each command merge-patches the CJBatch's spec (`spec.suspend`, `spec.cancel`), exactly as
`kubectl patch cjb NAME --type merge -p '{"spec": {...}}'` would; the operator acts on the
change. A finished batch is refused with its phase; a batch already in the asked state is
left as it is (exit code 0).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from cj_operator.cli import kube
from cj_operator.cli.app import (
    BatchName,
    Context,
    Kubeconfig,
    Namespace,
    connect,
    fail,
    namespace_of,
    out,
)
from cj_operator.cli.render import TERMINAL_PHASES
from cj_operator.spec import API_GROUP, API_VERSION, PLURAL


def _change(
    name: str,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    field: str,
    value: bool,
    verb: str,
) -> tuple[str, bool]:
    """Set `spec.<field>` to `value` unless it is already; returns (namespace, changed).

    Raises the Exit of `fail` for a missing or finished batch or a failed call.
    """
    api = connect(kubeconfig, context)
    ns = namespace_of(namespace, kubeconfig, context)
    custom = client.CustomObjectsApi(api)
    try:
        batch = kube.get_batch(api, ns, name)
        spec: dict[str, Any] = batch.get("spec") or {}
        phase = (batch.get("status") or {}).get("phase", "Pending")
        if phase in TERMINAL_PHASES:
            raise fail(f"cjbatch {name} has finished ({phase}); there is nothing to {verb}")
        if spec.get("cancel") and field != "cancel":
            raise fail(f"cjbatch {name} is being cancelled; there is nothing to {verb}")
        if bool(spec.get(field, False)) == value:
            return ns, False
        kube.call(
            api,
            f"patch cjbatch {name}",
            lambda: custom.patch_namespaced_custom_object(
                API_GROUP, API_VERSION, ns, PLURAL, name, {"spec": {field: value}}
            ),
        )
    except kube.KubeError as e:
        raise fail(str(e)) from None
    return ns, True


def suspend(
    name: BatchName,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Stop submitting comparisons (spec.suspend: true); answers in flight are still counted."""
    ns, changed = _change(name, namespace, kubeconfig, context, "suspend", True, "suspend")
    if changed:
        out.print(f"cjbatch/{name} suspended. Resume it with: cjctl resume {name} -n {ns}")
    else:
        out.print(f"cjbatch/{name} is already suspended")


def resume(
    name: BatchName,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Go on submitting comparisons where the batch stopped (spec.suspend: false)."""
    _, changed = _change(name, namespace, kubeconfig, context, "suspend", False, "resume")
    out.print(f"cjbatch/{name} {'resumed' if changed else 'is not suspended'}")


def cancel(
    name: BatchName,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Cancel the batch for good (spec.cancel: true).

    Its queued comparisons are dropped and it finishes as Cancelled with the results it has
    (results and comparisons ConfigMaps). The CJBatch stays; delete it to remove it.
    """
    ns, changed = _change(name, namespace, kubeconfig, context, "cancel", True, "cancel")
    if changed:
        out.print(
            f"cjbatch/{name} cancelled: it finishes as Cancelled with the comparisons it has. "
            f"Then: cjctl results {name} -n {ns}"
        )
    else:
        out.print(f"cjbatch/{name} is already being cancelled")
