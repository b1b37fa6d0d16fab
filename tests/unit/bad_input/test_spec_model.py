"""Bad-input suite, CJBatch specs on the operator's model: every hostile spec is refused naming
what is wrong (the API server refuses the same ones: tests/integration/bad_input)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cj_operator.spec import CJBatchSpec
from tests.support.spec_cases import HOSTILE, OPERATOR_REFUSED, Case, base_spec


def _wire_path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@pytest.mark.parametrize("case", HOSTILE + OPERATOR_REFUSED, ids=lambda c: c.name)
def test_a_hostile_spec_is_refused_naming_the_field(case: Case) -> None:
    with pytest.raises(ValidationError) as err:
        CJBatchSpec.model_validate(case.spec)
    if case.message is not None:
        assert case.message in str(err.value)
    else:
        paths = [_wire_path(e["loc"]) for e in err.value.errors()]
        assert any(p == case.field or p.startswith(f"{case.field}.") for p in paths), paths


def test_control_character_messages_say_which_and_where() -> None:
    spec = base_spec()
    spec["essays"][1]["text"] = "fine\tand\nfine\r\nthen\x00not"
    with pytest.raises(ValidationError) as err:
        CJBatchSpec.model_validate(spec)
    assert "control character '\\x00' at position 19 is not allowed" in str(err.value)
    # Tab, line feed and carriage return are text, not control characters to refuse.
    spec["essays"][1]["text"] = "fine\tand\nfine\r\n"
    assert CJBatchSpec.model_validate(spec).essays is not None


def test_non_finite_metadata_is_refused() -> None:
    spec = base_spec()
    spec["essays"][0]["metadata"] = {"score": float("inf")}
    with pytest.raises(ValidationError, match=r"metadata\.score: inf is not a JSON number"):
        CJBatchSpec.model_validate(spec)
