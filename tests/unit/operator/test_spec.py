"""The spec model accepts and rejects the shared examples, and the CRD is generated from it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cj_operator import crd
from cj_operator.spec import CJBatchSpec, Essay, duration_seconds
from tests.support.spec_cases import INVALID, VALID, Case, base_spec


def _wire_path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_valid_examples_are_accepted(case: Case) -> None:
    CJBatchSpec.model_validate(case.spec)


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_invalid_examples_are_rejected_with_their_message(case: Case) -> None:
    with pytest.raises(ValidationError) as err:
        CJBatchSpec.model_validate(case.spec)
    if case.message is not None:
        assert case.message in str(err.value)
    else:
        paths = [_wire_path(e["loc"]) for e in err.value.errors()]
        assert any(p == case.field or p.startswith(f"{case.field}.") for p in paths), paths


def test_defaults_and_wire_names() -> None:
    spec = CJBatchSpec.model_validate(base_spec())
    assert spec.comparisons.target_per_essay == 10
    assert spec.stopping.score_stability_se == 0.15
    assert spec.stopping.min_results_for_stability == 12
    assert spec.limits.max_retries == 3
    assert spec.limits.timeout is None
    assert spec.limits.min_success_rate is None
    assert spec.suspend is False
    dumped = CJBatchSpec.model_validate({**base_spec(), "limits": {"maxCostUSD": 1.0}}).model_dump(
        by_alias=True, exclude_none=True
    )
    assert dumped["limits"]["maxCostUSD"] == 1.0
    assert "essaysFrom" not in dumped


@pytest.mark.parametrize(
    ("text", "seconds"), [("4h", 14400), ("90m", 5400), ("1h30m", 5400), ("45s", 45)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "4", "h", "1d", "4 h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)


@pytest.mark.parametrize(
    ("n", "target", "max_total", "budget"),
    [
        (20, 10, None, 100),
        (5, 3, None, 8),
        (10, 10, 20, 20),
        (2, 1, None, 1),
        # ceil(10 x 10 / 2) = 50 > 45 distinct pairs: capped, pairs never repeat.
        (10, 10, None, 45),
        (4, 10, None, 6),
        (3, 200, 100, 3),
    ],
)
def test_effective_budget(n: int, target: int, max_total: int | None, budget: int) -> None:
    spec = CJBatchSpec.model_validate(
        {**base_spec(), "comparisons": {"targetPerEssay": target, "maxTotal": max_total}}
    )
    assert spec.effective_budget(n) == budget


def test_user_prompt_has_prompt_then_rubric() -> None:
    spec = CJBatchSpec.model_validate(
        {**base_spec(), "assignment": {"prompt": " Write. ", "rubric": "Be clear."}}
    )
    assert spec.assignment.user_prompt() == "Assignment:\nWrite.\n\nRubric:\nBe clear."


def test_crd_file_is_generated_from_the_models() -> None:
    assert crd.CRD_PATH.read_text() == crd.render_crd(), (
        "crds/cjbatch.yaml is out of date: run `python -m cj_operator.crd`"
    )
    assert crd.main(["--check"]) == 0


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path} has no type")
    for key in ("$ref", "anyOf", "allOf", "oneOf", "title"):
        if key in schema:
            problems.append(f"{path} has {key}")
    for name, prop in schema.get("properties", {}).items():
        problems += _walk(prop, f"{path}.{name}")
    if "items" in schema:
        problems += _walk(schema["items"], f"{path}[]")
    return problems


def test_crd_schema_is_structural_and_carries_the_rules() -> None:
    version = crd.build_crd()["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    assert _walk(root, "") == []
    spec = root["properties"]["spec"]
    assert set(spec["properties"]) == {
        f.alias or name for name, f in CJBatchSpec.model_fields.items()
    }
    messages = {v["message"] for v in spec["x-kubernetes-validations"]}
    assert "set exactly one of spec.essays and spec.essaysFrom" in messages
    assert "spec.essays is immutable after creation" in messages
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Progress",
        "Completed",
        "Failed",
        "Reliability",
        "Age",
        "Ready",
        "SSR",
        "Cost",
        "Reserved",
    ]
    columns = version["additionalPrinterColumns"]
    assert all(c["description"] for c in columns)  # kubectl explain / UIs show them
    wide = [c["name"] for c in columns if c.get("priority") == 1]  # only in -o wide
    assert wide == ["Ready", "SSR", "Cost", "Reserved"]
    conditions = root["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize("grade", ["B", True, [3]])
def test_an_anchor_grade_must_be_a_finite_number(grade: object) -> None:
    with pytest.raises(ValueError, match=r"metadata\.anchorGrade must be a finite number"):
        Essay.model_validate({"id": "e1", "text": "An essay.", "metadata": {"anchorGrade": grade}})


def test_an_anchor_grade_may_be_an_integer_or_a_float() -> None:
    for grade in (3, 3.5):
        essay = Essay.model_validate(
            {"id": "e1", "text": "An essay.", "metadata": {"anchorGrade": grade}}
        )
        assert essay.metadata == {"anchorGrade": grade}
