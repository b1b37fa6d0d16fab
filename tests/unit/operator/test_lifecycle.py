"""The batch state machine and its reasons: the table, `move`, one writer, documented names."""

from __future__ import annotations

import builtins
import re
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cj_operator.lifecycle.reasons import STOP_REASONS, Reason
from cj_operator.lifecycle.transitions import ALLOWED, IllegalTransitionError, move
from cj_operator.status.model import Phase
from common_core import BatchStateEnum

REPO_ROOT = Path(__file__).resolve().parents[3]
OPERATOR_SRC = REPO_ROOT / "operator" / "src" / "cj_operator"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
S = BatchStateEnum


@dataclass
class Row:
    state: BatchStateEnum
    reason: str = ""
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


def test_every_state_has_a_row_and_terminal_states_lead_nowhere() -> None:
    assert set(ALLOWED) == set(BatchStateEnum)
    for state, targets in ALLOWED.items():
        assert (not targets) == state.is_terminal, state


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s, targets in ALLOWED.items() for t in targets],
)
def test_allowed_moves_set_state_and_reason(source: BatchStateEnum, target: BatchStateEnum) -> None:
    row = Row(source)
    move(row, target, reason=Reason.TIMED_OUT, message="why", now=NOW)
    assert (row.state, row.reason, row.message) == (target, "TimedOut", "why")
    assert (row.finished_at == NOW) == target.is_terminal
    assert (row.started_at == NOW) == target.is_terminal


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in BatchStateEnum for t in BatchStateEnum if t not in ALLOWED[s]],
)
def test_illegal_moves_raise_and_change_nothing(
    source: BatchStateEnum, target: BatchStateEnum
) -> None:
    row = Row(source, reason="ScoresStable", message="before")
    with pytest.raises(IllegalTransitionError, match=f"from {source.value} to {target.value}"):
        move(row, target, reason=Reason.CANCELLED, message="after", now=NOW)
    assert (row.state, row.reason, row.message) == (source, "ScoresStable", "before")


def test_a_finished_batch_cannot_be_restarted_or_finished_twice() -> None:
    row = Row(S.SCORING)
    move(row, S.COMPLETED, reason=Reason.BUDGET_EXHAUSTED, message="done", now=NOW)
    for target in (S.WAITING_CALLBACKS, S.SCORING, S.FAILED, S.CANCELLED):
        with pytest.raises(IllegalTransitionError):
            move(row, target, reason=Reason.CANCELLED, message="", now=NOW)


def test_no_reason_clears_reason_and_message_and_keeps_a_started_at() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    row = Row(S.INITIALIZING, reason="ConfigMapNotFound", message="missing", started_at=started)
    move(row, S.GENERATING_PAIRS, reason=None, message="ignored", now=NOW)
    assert (row.reason, row.message, row.started_at, row.finished_at) == ("", "", started, None)
    move(row, S.WAITING_CALLBACKS, reason=None, message="", now=NOW)
    move(row, S.CANCELLED, reason=Reason.CANCELLED, message="deleted", now=NOW)
    assert (row.started_at, row.finished_at) == (started, NOW)


def test_batch_state_is_written_only_by_the_transitions_module() -> None:
    writes = re.compile(r"\.state\s*=(?!=)")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for path in OPERATOR_SRC.rglob("*.py")
        if path.name != "transitions.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if writes.search(line)
    ]
    assert offenders == []


# --- the names users read ---------------------------------------------------------------------

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
CAMEL = re.compile(r"`([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+)`")
CONDITION_TYPES = {
    "Ready",
    "Succeeded",
    "Progressing",
    "Suspended",
    "EssaysLoaded",
    "OrderEffect",
    "ResultsWritten",
    "ComparisonsWritten",
}
KUBERNETES_KINDS = {"ClusterKopfPeering", "ScaledObject", "ServiceMonitor", "PodMonitor"}


CLASS = re.compile(r"^class (\w+)", re.MULTILINE)
CLASS_NAMES = {
    name
    for folder in ("common_core", "operator", "workers", "plumbing")
    for path in (REPO_ROOT / folder).rglob("*.py")
    for name in CLASS.findall(path.read_text(encoding="utf-8"))
}
"""Classes of our own packages, which docs name in backticks too (e.g. `CallbackStore`)."""


def _known_name(name: str) -> bool:
    return (
        name in set(Reason)
        or name in CLASS_NAMES
        or name in typing.get_args(Phase)
        or name in CONDITION_TYPES
        or name in KUBERNETES_KINDS
        or hasattr(builtins, name)
    )


def test_every_camel_case_name_in_the_docs_is_a_reason_or_another_known_name() -> None:
    unknown = [
        f"{doc.relative_to(REPO_ROOT)}:{n}: {name}"
        for doc in DOCS
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for name in CAMEL.findall(line)
        if not _known_name(name)
    ]
    assert unknown == []


def test_every_stop_reason_is_documented_in_the_crd_reference() -> None:
    reference = (REPO_ROOT / "docs" / "crd-reference.md").read_text(encoding="utf-8")
    assert sorted(r.value for r in STOP_REASONS if f"`{r.value}`" not in reference) == []


def test_reasons_are_camel_case_as_metav1_conditions_require() -> None:
    pattern = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    assert [r for r in Reason if not pattern.match(r.value)] == []
