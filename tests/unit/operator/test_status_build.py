"""Status building: phase, progress, counters, conditions and their transition times."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from cj_operator.status.build import BatchSnapshot, build_status, progress_percent, status_patch
from cj_operator.status.model import CJBatchStatus, OrderEffect, TopEssay
from common_core import BatchStateEnum
from tests.support.factories import NOW


def snap(**changes: Any) -> BatchSnapshot:
    base = BatchSnapshot(
        uid="u1",
        name="b",
        namespace="ns",
        state=BatchStateEnum.WAITING_CALLBACKS,
        suspended=False,
        generation=1,
        essays=10,
        essays_loaded=True,
        budget=50,
        round=2,
        submitted=30,
        completed=20,
        failed=3,
        cost_usd=0.1234567,
        prompt_tokens=100,
        completion_tokens=10,
        total_tokens=110,
        reliability=0.71234,
        ssr=0.81234,
        max_score_change=0.2,
        score_change_se=0.31,
        reason="",
        message="",
        started_at=NOW,
        finished_at=None,
        results_config_map=None,
        top=(TopEssay(id="e1", score=1.2, standard_error=0.3, rank=1),),
    )
    return replace(base, **changes)


def _conditions(status: CJBatchStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_running_batch() -> None:
    status = build_status(snap(), [], now=NOW)
    assert status.phase == "WaitingCallbacks"
    assert (status.submitted, status.completed, status.failed, status.pending) == (30, 20, 3, 7)
    assert status.progress == "40%"
    assert (status.reliability, status.ssr) == (0.7123, 0.8123)
    assert status.cost_usd == 0.123457
    assert status.tokens.total == 110
    assert status.observed_generation == 1
    assert _conditions(status) == {
        "Ready": ("False", "WaitingCallbacks"),
        "Succeeded": ("Unknown", "InProgress"),
        "Progressing": ("True", "WaitingCallbacks"),
        "Suspended": ("False", "NotSuspended"),
        "EssaysLoaded": ("True", "EssaysStored"),
        "OrderEffect": ("Unknown", "NotFitted"),
        "ResultsWritten": ("Unknown", "InProgress"),
        "ComparisonsWritten": ("Unknown", "InProgress"),
    }
    assert all(c.observed_generation == 1 for c in status.conditions)


def test_order_effect_condition_and_misfit_count() -> None:
    biased = OrderEffect(estimate=0.52, standard_error=0.1, p_value=2e-7, significant=True)
    status = build_status(snap(order_effect=biased, misfitting_essays=3), [], now=NOW)
    assert status.order_effect == biased
    assert status.misfitting_essays == 3
    order = next(c for c in status.conditions if c.type == "OrderEffect")
    assert (order.status, order.reason) == ("True", "OrderEffectSignificant")
    assert "favours slot A" in order.message and "+0.52 logits" in order.message
    fair = OrderEffect(estimate=-0.03, standard_error=0.1, p_value=0.76, significant=False)
    order = next(
        c
        for c in build_status(snap(order_effect=fair), [], now=NOW).conditions
        if c.type == "OrderEffect"
    )
    assert (order.status, order.reason) == ("False", "NoOrderEffect")


@pytest.mark.parametrize(
    ("changes", "percent"),
    [
        ({"completed": 0}, 0),
        ({"completed": 50}, 100),
        ({"completed": 80}, 100),
        ({"budget": 0}, 0),
        ({"state": BatchStateEnum.COMPLETED, "completed": 10}, 100),
        ({"completed": 49}, 98),
    ],
)
def test_progress_stays_within_0_and_100(changes: dict[str, object], percent: int) -> None:
    assert progress_percent(snap(**changes)) == percent


def test_phases() -> None:
    pending = snap(state=BatchStateEnum.INITIALIZING, essays_loaded=False, essays=0)
    assert build_status(pending, [], now=NOW).phase == "Pending"
    assert build_status(snap(suspended=True), [], now=NOW).phase == "Suspended"
    done = snap(state=BatchStateEnum.COMPLETED, suspended=True, reason="ScoresStable")
    assert build_status(done, [], now=NOW).phase == "Completed"


def test_terminal_conditions() -> None:
    done = build_status(
        snap(state=BatchStateEnum.COMPLETED, reason="ScoresStable", message="Stable."), [], now=NOW
    )
    assert _conditions(done)["Succeeded"] == ("True", "ScoresStable")
    assert _conditions(done)["Progressing"] == ("False", "ScoresStable")
    failed = build_status(
        snap(state=BatchStateEnum.FAILED, reason="LowSuccessRate", message="Too few."),
        [],
        now=NOW,
    )
    assert _conditions(failed)["Succeeded"] == ("False", "LowSuccessRate")
    assert next(c for c in failed.conditions if c.type == "Succeeded").message == "Too few."


def test_essays_not_found_shows_on_essays_loaded() -> None:
    waiting = snap(
        state=BatchStateEnum.INITIALIZING,
        essays_loaded=False,
        essays=0,
        reason="ConfigMapNotFound",
        message="configmap/x not found",
    )
    status = build_status(waiting, [], now=NOW)
    assert _conditions(status)["EssaysLoaded"] == ("False", "ConfigMapNotFound")
    assert _conditions(status)["Progressing"] == ("False", "ConfigMapNotFound")


def test_suspension() -> None:
    status = build_status(snap(suspended=True), [], now=NOW)
    assert _conditions(status)["Suspended"] == ("True", "SuspendRequested")
    assert _conditions(status)["Progressing"] == ("False", "Suspended")


def test_transition_time_changes_only_with_the_status() -> None:
    first = build_status(snap(), [], now=NOW)
    later = NOW + timedelta(minutes=5)
    second = build_status(snap(completed=25, round=3), first.conditions, now=later)
    assert all(c.last_transition_time == NOW for c in second.conditions)
    third = build_status(snap(suspended=True), second.conditions, now=later)
    times = {c.type: c.last_transition_time for c in third.conditions}
    assert times["Suspended"] == later
    assert times["Progressing"] == later
    assert times["Succeeded"] == NOW


def test_patch_uses_wire_names_and_nulls() -> None:
    body = status_patch(build_status(snap(reliability=None), [], now=NOW))
    status = body["status"]
    assert isinstance(status, dict)
    assert status["reliability"] is None
    assert status["costUSD"] == pytest.approx(0.123457)
    assert (status["reservedCostUSD"], status["lateResults"], status["lateCostUSD"]) == (
        0.0,
        0,
        0.0,
    )
    assert status["topEssays"][0]["standardError"] == 0.3
    assert status["conditions"][0]["lastTransitionTime"].startswith("2026-01-02T03:04:05")
    # Round-trips through the model, as the CRD schema is generated from it.
    CJBatchStatus.model_validate(status)


def test_reserved_and_late_cost_are_shown() -> None:
    body = status_patch(
        build_status(
            snap(reserved_usd=0.0123456789, late_results=2, late_cost_usd=0.5), [], now=NOW
        )
    )
    status = body["status"]
    assert isinstance(status, dict)
    assert status["reservedCostUSD"] == pytest.approx(0.012346)
    assert (status["lateResults"], status["lateCostUSD"]) == (2, 0.5)


def test_results_written_condition() -> None:
    def results(**changes: Any) -> tuple[str, str]:
        status = build_status(snap(**changes), [], now=NOW)
        found = next(c for c in status.conditions if c.type == "ResultsWritten")
        return found.status, found.reason

    done = {"state": BatchStateEnum.COMPLETED}
    assert results(**done, results_config_map="b-results") == ("True", "ResultsStored")
    blocked = results(**done, results_blocked="configmap/b-results already exists")
    assert blocked == ("False", "ResultsConfigMapNotOwned")
    assert results(**done) == ("Unknown", "InProgress")


def test_comparisons_written_condition_and_field() -> None:
    def comparisons(**changes: Any) -> tuple[str, str, str | None]:
        status = build_status(snap(**changes), [], now=NOW)
        found = next(c for c in status.conditions if c.type == "ComparisonsWritten")
        return found.status, found.reason, status.comparisons_config_map

    done = {"state": BatchStateEnum.COMPLETED}
    assert comparisons(**done, comparisons_config_map="b-comparisons") == (
        "True",
        "ComparisonsStored",
        "b-comparisons",
    )
    too_large = ("ComparisonsTooLarge", "The 9000 comparisons are 4,000,000 bytes as CSV")
    assert comparisons(**done, comparisons_blocked=too_large) == (
        "False",
        "ComparisonsTooLarge",
        None,
    )
    taken = ("ComparisonsConfigMapNotOwned", "configmap/b-comparisons already exists")
    assert comparisons(**done, comparisons_blocked=taken)[:2] == (
        "False",
        "ComparisonsConfigMapNotOwned",
    )
    assert comparisons() == ("Unknown", "InProgress", None)
    status = build_status(snap(**done, comparisons_blocked=too_large), [], now=NOW)
    message = next(c.message for c in status.conditions if c.type == "ComparisonsWritten")
    assert message == too_large[1]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("False", "WaitingCallbacks")),
        ({"suspended": True}, ("False", "Suspended")),
        (
            {"state": BatchStateEnum.INITIALIZING, "essays_loaded": False},
            ("False", "LoadingEssays"),
        ),
        (
            {"state": BatchStateEnum.COMPLETED, "reason": "ScoresStable"},
            ("False", "WritingResults"),
        ),
        (
            {
                "state": BatchStateEnum.COMPLETED,
                "reason": "ScoresStable",
                "results_blocked": "configmap/b-results is not owned by this batch",
            },
            ("False", "ResultsConfigMapNotOwned"),
        ),
        (
            {
                "state": BatchStateEnum.COMPLETED,
                "reason": "ReliabilityReached",
                "results_config_map": "b-results",
            },
            ("True", "ResultsReady"),
        ),
        (
            {"state": BatchStateEnum.FAILED, "reason": "LowSuccessRate", "message": "Too few."},
            ("False", "LowSuccessRate"),
        ),
        ({"state": BatchStateEnum.CANCELLED, "reason": "Cancelled"}, ("False", "Cancelled")),
    ],
)
def test_ready_only_once_the_results_can_be_read(
    changes: dict[str, object], expected: tuple[str, str]
) -> None:
    """`kubectl wait --for=condition=Ready` returns only when the ranking is in its ConfigMap;
    a failed or cancelled batch says why it will never be Ready."""
    status = build_status(snap(**changes), [], now=NOW)
    assert status.conditions[0].type == "Ready"
    assert _conditions(status)["Ready"] == expected
    ready = status.conditions[0]
    if expected[0] == "True":
        assert "configmap/b-results" in ready.message
    if changes.get("state") == BatchStateEnum.FAILED:
        assert ready.message == "The batch failed and has no results: Too few."
