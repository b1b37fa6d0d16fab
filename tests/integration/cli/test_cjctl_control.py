"""cjctl on the real kube-apiserver without an operator: suspend, resume and cancel patch the
spec; list prints tables and objects; `submit --dry-run` prints what kubectl then applies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from cj_operator.spec import API_GROUP, API_VERSION, PLURAL, CJBatchSpec
from tests.integration.cli.conftest import Cjctl
from tests.support.cjbatches import Batches
from tests.support.devcluster import ClusterEnv
from tests.support.kube import kubectl

pytestmark = pytest.mark.usefixtures("cjbatch_crd")

SPEC: dict[str, Any] = {
    "essays": [{"id": "a", "text": "First essay."}, {"id": "b", "text": "Second essay."}],
    "assignment": {"prompt": "Describe your town."},
    "judge": {"provider": "mock"},
}


def _spec_of(batches: Batches, name: str) -> dict[str, Any]:
    obj = batches.get(name)
    assert obj is not None
    return dict(obj["spec"])


def _set_phase(batches: Batches, name: str, phase: str) -> None:
    """Write status.phase as the operator would (there is no operator in these tests)."""
    batches.custom.patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, batches.namespace, PLURAL, name, {"status": {"phase": phase}}
    )


def test_suspend_resume_and_cancel_change_the_spec(cjctl: Cjctl, batches: Batches) -> None:
    batches.create("town", SPEC)

    suspended = cjctl("suspend", "town")
    assert suspended.exit_code == 0, suspended.output
    assert "cjbatch/town suspended" in suspended.stdout
    assert _spec_of(batches, "town")["suspend"] is True
    again = cjctl("suspend", "town")
    assert (again.exit_code, again.stdout.strip()) == (0, "cjbatch/town is already suspended")

    resumed = cjctl("resume", "town")
    assert (resumed.exit_code, resumed.stdout.strip()) == (0, "cjbatch/town resumed")
    assert _spec_of(batches, "town")["suspend"] is False
    assert cjctl("resume", "town").stdout.strip() == "cjbatch/town is not suspended"

    cancelled = cjctl("cancel", "town")
    assert cancelled.exit_code == 0, cancelled.output
    assert "cjbatch/town cancelled" in cancelled.stdout
    assert _spec_of(batches, "town")["cancel"] is True
    assert cjctl("cancel", "town").stdout.strip() == "cjbatch/town is already being cancelled"
    refused = cjctl("suspend", "town")
    assert refused.exit_code == 1
    assert "cjbatch town is being cancelled; there is nothing to suspend" in refused.stderr
    assert _spec_of(batches, "town")["suspend"] is False


def test_a_finished_or_missing_batch_is_refused_by_name(cjctl: Cjctl, batches: Batches) -> None:
    batches.create("done", SPEC)
    _set_phase(batches, "done", "Completed")
    for command in ("suspend", "resume", "cancel"):
        result = cjctl(command, "done")
        assert result.exit_code == 1
        assert f"cjbatch done has finished (Completed); there is nothing to {command}" in (
            result.stderr
        )
    assert _spec_of(batches, "done").get("cancel") is False
    missing = cjctl("cancel", "nope")
    assert missing.exit_code == 1
    assert f"cjbatch 'nope' not found in namespace '{batches.namespace}'" in missing.stderr


def test_the_api_server_keeps_a_cancellation(batches: Batches) -> None:
    batches.create("final", {**SPEC, "cancel": True})
    with pytest.raises(ApiException) as refused:
        batches.patch_spec("final", {"cancel": False})
    assert refused.value.status == 422
    assert "spec.cancel cannot be set back to false" in str(refused.value.body)
    batches.patch_spec("final", {"suspend": True})  # other changes still go through
    assert _spec_of(batches, "final")["cancel"] is True


def test_list_as_tables_and_objects(cjctl: Cjctl, batches: Batches) -> None:
    batches.create("first", SPEC)
    batches.create("second", {**SPEC, "judge": {"provider": "anthropic", "model": "m-1"}})
    _set_phase(batches, "second", "WaitingCallbacks")

    as_json = cjctl("list", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["first", "second"]
    assert all("managedFields" not in i["metadata"] for i in listed["items"])
    assert all(i["metadata"]["uid"] for i in listed["items"])

    as_yaml = cjctl("list", "-o", "yaml")
    assert as_yaml.exit_code == 0, as_yaml.output
    assert yaml.safe_load(as_yaml.stdout) == listed

    wide = cjctl("list", "-o", "wide")
    assert wide.exit_code == 0, wide.output
    second = next(line for line in wide.stdout.splitlines() if "second" in line)
    assert "WaitingCallbacks" in second and "anthropic/m-1" in second
    assert "JUDGE" in wide.stdout and "JUDGE" not in cjctl("list").stdout


def _inputs(tmp_path: Path) -> list[str]:
    essays = tmp_path / "essays.csv"
    lines = ["id,text,cohort", '0e12,"First essay,\nin two lines",7b']
    lines += [f"s{i},Essay number {i},7c" for i in range(5)]
    essays.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Should schools start later?\n", encoding="utf-8")
    return [str(essays), "--prompt-file", str(prompt), "--judge", "anthropic:claude-sonnet-4-5"]


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_dry_run_output_is_what_kubectl_applies(
    cjctl: Cjctl, cluster: ClusterEnv, batches: Batches, tmp_path: Path, output: str
) -> None:
    name = f"dry-{output}"
    flags = ["--temperature", "0.2", "--reliability-target", "0.8", "--timeout", "90m"]
    printed = cjctl("submit", *_inputs(tmp_path), "--name", name, *flags, "--dry-run", "-o", output)
    assert printed.exit_code == 0, printed.output
    assert batches.get(name) is None  # nothing was created

    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=printed.stdout)
    created = batches.get(name)
    assert created is not None
    spec = CJBatchSpec.model_validate(created["spec"])
    assert spec.judge.temperature == 0.2
    assert spec.stopping.reliability_target == 0.8
    assert spec.limits.timeout == "90m"
    assert spec.essays_from is not None
    (source,) = spec.essays_from
    cm: Any = batches.core.read_namespaced_config_map(source.config_map, batches.namespace)
    assert cm.metadata.labels == {"cj.huleedu.io/batch": name}
    assert source.key is not None
    first = json.loads(cm.data[source.key].splitlines()[0])
    assert first == {
        "id": "0e12",
        "text": "First essay,\nin two lines",
        "metadata": {"cohort": "7b"},
    }

    # The same flags without --dry-run create the same spec.
    real = cjctl("submit", *_inputs(tmp_path), "--name", f"real-{output}", *flags)
    assert real.exit_code == 0, real.output
    other = batches.get(f"real-{output}")
    assert other is not None
    spec_real = CJBatchSpec.model_validate(other["spec"])
    assert spec_real.model_copy(update={"essays_from": None}) == spec.model_copy(
        update={"essays_from": None}
    )
