"""README.md stays true: its CJBatch reference names every spec field, its commands exist."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from cj_operator.spec import CJBatchSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        else:
            found += [
                a for a in typing.get_args(arg) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
    return found


def _leaf_paths(model: type[BaseModel], prefix: str) -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        wire = field.alias or name
        is_list = "list[" in str(field.annotation)
        path = f"{prefix}{wire}{'[]' if is_list else ''}"
        nested = _models_in(field.annotation)
        if nested:
            for sub in nested:
                paths += _leaf_paths(sub, path + ".")
        else:
            paths.append(path)
    return paths


def test_reference_table_lists_every_spec_field() -> None:
    documented = set(re.findall(r"^\| `(spec\.[^`]+)`", README, flags=re.MULTILINE))
    missing = [p for p in _leaf_paths(CJBatchSpec, "spec.") if p not in documented]
    assert missing == [], f"README's CJBatch table lacks {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_make_targets_named_in_readme_exist() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))
    named = set(re.findall(r"`make ([a-z-]+)", README))
    assert named <= targets, f"README names missing make targets {named - targets}"
