"""RBAC the chart renders beyond the operator's own: the user roles aggregated into the
built-in `admin`/`edit`/`view` roles, and `rbac.create: false` (the platform binds the
operator's ServiceAccount itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chart import ALL_ON_VALUES, Obj, of_kind, one, render

RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
CJ = "cj.huleedu.io"


def _grants(role: Obj) -> dict[str, set[str]]:
    """resource -> verbs of a role's rules (every rule must name the CJBatch group only)."""
    out: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [CJ], rule
        assert "resourceNames" not in rule
        for resource in rule["resources"]:
            out.setdefault(resource, set()).update(rule["verbs"])
    return out


def _aggregated_to(role: Obj) -> set[str]:
    """The built-in roles a ClusterRole's labels aggregate it into (each label must be "true")."""
    labels = role["metadata"]["labels"]
    into = {k: v for k, v in labels.items() if k.startswith(AGGREGATE)}
    assert set(into.values()) <= {"true"}, into
    return {k.removeprefix(AGGREGATE) for k in into}


def test_the_editor_role_joins_admin_and_edit_and_may_change_cjbatches_not_their_status() -> None:
    editor = one(render(), "ClusterRole", "-cj-batch-editor")
    assert editor["metadata"]["name"] == "cj-cj-operator-cj-batch-editor"
    assert _aggregated_to(editor) == {"admin", "edit"}
    assert _grants(editor) == {
        "cjbatches": {"get", "list", "watch", "create", "update", "patch", "delete"},
        # The operator is the only writer of status.
        "cjbatches/status": {"get"},
    }


def test_the_viewer_role_joins_view_and_only_reads() -> None:
    viewer = one(render(), "ClusterRole", "-cj-batch-viewer")
    assert viewer["metadata"]["name"] == "cj-cj-operator-cj-batch-viewer"
    assert _aggregated_to(viewer) == {"view"}
    assert _grants(viewer) == {"cjbatches": {"get", "list", "watch"}, "cjbatches/status": {"get"}}


def test_the_user_roles_are_bound_by_aggregation_only() -> None:
    objects = render()
    bound = {
        b["roleRef"]["name"] for b in objects if b["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    assert not {r for r in bound if r.endswith(("-cj-batch-editor", "-cj-batch-viewer"))}
    for role in (
        one(objects, "ClusterRole", "-operator-cluster"),
        one(objects, "ClusterRole", "-operator"),
    ):
        assert not _aggregated_to(role), "the operator's rights must not reach users"


def test_aggregated_roles_can_be_left_out() -> None:
    names = {
        c["metadata"]["name"]
        for c in of_kind(render({"rbac.aggregatedRoles": False}), "ClusterRole")
    }
    assert names == {"cj-cj-operator-operator-cluster", "cj-cj-operator-operator"}


@pytest.mark.parametrize(
    ("values", "files"),
    [
        ({}, []),
        ({}, [ALL_ON_VALUES]),
        ({"operator.watchNamespaces": ["team-a", "team-b"]}, []),
    ],
    ids=["default", "all-on", "namespaced"],
)
def test_rbac_create_false_renders_no_rbac_object(
    values: dict[str, object], files: list[Path]
) -> None:
    with_rbac = render(values, files)
    assert {o["kind"] for o in with_rbac} & RBAC_KINDS  # the case renders RBAC by default
    without = render({**values, "rbac.create": False}, files)
    assert not {o["kind"] for o in without} & RBAC_KINDS

    # Everything else is unchanged: the ServiceAccount the platform binds is still there.
    def rest(objects: list[Obj]) -> list[tuple[str, str]]:
        return sorted(
            (o["kind"], o["metadata"]["name"])
            for o in objects
            if o["kind"] not in RBAC_KINDS and o["kind"] != "Secret"  # the token is random
        )

    assert rest(without) == rest(with_rbac)
    assert one(without, "ServiceAccount", "-operator")
