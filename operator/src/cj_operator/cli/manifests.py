"""The objects `cjctl submit` creates, and how `--dry-run` prints them (pure; no cluster I/O).

`submit_spec` turns the command's flags into a validated `CJBatchSpec`, naming the flag when a
value is refused; `batch_object` and `config_map_object` are the Kubernetes objects (plain
dicts, as the API server takes and returns them); `as_yaml` and `as_json` print objects so
that `kubectl apply -f -` takes them back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from cj_operator.cli.app import validation_message
from cj_operator.spec import API_GROUP, API_VERSION, KIND, CJBatchSpec, Judge, duration_seconds

BATCH_LABEL = f"{API_GROUP}/batch"
"""Label on the essay ConfigMaps naming their CJBatch."""

FLAGS = {
    "assignment.prompt": "--prompt-file",
    "assignment.rubric": "--rubric-file",
    "judge.temperature": "--temperature",
    "comparisons.targetPerEssay": "--per-essay",
    "comparisons.maxTotal": "--max-total",
    "stopping.reliabilityTarget": "--reliability-target",
    "limits.maxCostUSD": "--max-cost",
    "limits.timeout": "--timeout",
}
"""The `submit` flag behind each spec field it sets (wire names, dotted)."""


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def submit_spec(
    *,
    sources: Sequence[tuple[str, str]],
    prompt: str,
    rubric: str | None,
    judge: Judge,
    temperature: float | None = None,
    per_essay: int = 10,
    max_total: int | None = None,
    max_cost: float | None = None,
    reliability_target: float | None = None,
    timeout: str | None = None,
) -> CJBatchSpec:
    """The spec `cjctl submit` creates: essays from the (ConfigMap, key) `sources`, the rest
    from the flags (None: not set, the operator's default applies).

    Raises ValueError `--flag: message` when the spec model refuses a value (the same message
    the API server gives), e.g. `--timeout: spec.limits.timeout must be between 1m and 168h`.
    """
    wire: dict[str, Any] = {
        "essaysFrom": [{"configMap": cm, "key": key} for cm, key in sources],
        "assignment": _without_none({"prompt": prompt, "rubric": rubric}),
        "judge": _without_none(
            {**judge.model_dump(mode="json", by_alias=True), "temperature": temperature}
        ),
        "comparisons": _without_none({"targetPerEssay": per_essay, "maxTotal": max_total}),
        "stopping": _without_none({"reliabilityTarget": reliability_target}),
        "limits": _without_none({"maxCostUSD": max_cost, "timeout": timeout}),
    }
    if timeout is not None:
        try:
            duration_seconds(timeout)
        except ValueError as e:
            raise ValueError(f"--timeout: {e}") from None
    try:
        return CJBatchSpec.model_validate(wire)
    except ValidationError as e:
        raise ValueError(validation_message(e, FLAGS)) from None


def batch_object(name: str, namespace: str, spec: CJBatchSpec) -> dict[str, Any]:
    """The CJBatch `name` in `namespace` (spec in wire names, unset fields left out)."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def config_map_object(
    batch: str, name: str, namespace: str, data: dict[str, str]
) -> dict[str, Any]:
    """An essays ConfigMap of CJBatch `batch` (labelled with BATCH_LABEL)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {BATCH_LABEL: batch}},
        "data": data,
    }


_MAY_READ_AS_NUMBER = re.compile(r"^[-+.0-9]")


class _Dumper(yaml.SafeDumper):
    """YAML that Kubernetes reads back as written: multi-line text as literal blocks, and
    strings that a YAML 1.1 reader (kubectl's) might take for a number quoted."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if _MAY_READ_AS_NUMBER.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def as_yaml(objects: Sequence[dict[str, Any]]) -> str:
    """The objects as YAML documents separated by `---` (keys in their given order)."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, allow_unicode=True, explicit_start=True
    )


def as_list(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The objects as a `v1` `List`, the shape `kubectl get -o json` prints."""
    return {"apiVersion": "v1", "kind": "List", "items": list(objects)}


def as_json(objects: Sequence[dict[str, Any]]) -> str:
    """The objects as one JSON `List` (indented)."""
    return json.dumps(as_list(objects), indent=2, ensure_ascii=False)
