"""Stopping rules: each rule, their precedence, boundaries and bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cj_operator.lifecycle.reasons import Reason
from cj_operator.scoring.stopping import decide_stop, max_score_change, score_change_se

# A batch in the middle of its work: nothing says stop.
RUNNING: dict[str, Any] = {
    "n_items": 20,
    "results": 100,
    "submitted": 110,
    "max_total": 400,
    "change_se": 0.3,
    "stability_threshold_se": 0.15,
    "min_results_for_stability": 12,
    "reliability": 0.6,
    "reliability_target": 0.9,
    "pairs_available": 80,
}


def decide(**overrides: Any) -> Any:
    return decide_stop(**{**RUNNING, **overrides})


def test_a_running_batch_continues_and_says_what_it_waits_for() -> None:
    decision = decide()
    assert not decision.stop
    assert decision.reason is None
    assert "110 of 400" in decision.message
    assert "0.300 standard errors" in decision.message


# --- each rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [0, 1])
def test_fewer_than_two_essays_stop_at_once(n_items: int) -> None:
    decision = decide(n_items=n_items, results=0, submitted=0, change_se=None)
    assert decision.stop
    assert decision.reason == Reason.INSUFFICIENT_ESSAYS
    assert f"{n_items} essay" in decision.message


def test_reaching_the_reliability_target_stops() -> None:
    decision = decide(reliability=0.91)
    assert decision.stop
    assert decision.reason == Reason.RELIABILITY_REACHED
    assert "0.910" in decision.message
    assert "0.900" in decision.message


def test_reliability_exactly_at_the_target_stops() -> None:
    assert decide(reliability=0.9).reason == Reason.RELIABILITY_REACHED


@pytest.mark.parametrize(
    ("reliability", "target"), [(0.89, 0.9), (None, 0.9), (0.99, None), (None, None)]
)
def test_reliability_rule_needs_a_target_and_a_value_that_reached_it(
    reliability: float | None, target: float | None
) -> None:
    assert not decide(reliability=reliability, reliability_target=target).stop


def test_stable_scores_stop() -> None:
    decision = decide(change_se=0.1)
    assert decision.stop
    assert decision.reason == Reason.SCORES_STABLE
    assert "0.100 standard errors" in decision.message
    assert "scoreStabilitySE 0.15" in decision.message
    assert "100 results" in decision.message


def test_a_change_equal_to_the_threshold_is_not_stable() -> None:
    assert not decide(change_se=0.15).stop


def test_stability_needs_a_previous_fit() -> None:
    decision = decide(change_se=None)
    assert not decision.stop
    assert "no previous fit" in decision.message


def test_stability_needs_the_minimum_number_of_results() -> None:
    early = decide(results=11, submitted=20, change_se=0.0)
    assert not early.stop
    assert "from 12 results" in early.message
    assert decide(results=12, submitted=20, change_se=0.0).reason == Reason.SCORES_STABLE


def test_exhausted_budget_stops() -> None:
    decision = decide(submitted=400)
    assert decision.stop
    assert decision.reason == Reason.BUDGET_EXHAUSTED
    assert "400" in decision.message


def test_budget_overrun_by_retries_still_stops() -> None:
    assert decide(submitted=405).reason == Reason.BUDGET_EXHAUSTED


def test_one_comparison_left_in_the_budget_continues() -> None:
    assert not decide(submitted=399).stop


def test_zero_budget_stops_before_anything_is_submitted() -> None:
    decision = decide(results=0, submitted=0, max_total=0, change_se=None, reliability=None)
    assert decision.reason == Reason.BUDGET_EXHAUSTED


@pytest.mark.parametrize("pairs_available", [0, -3])
def test_no_pairs_left_stops(pairs_available: int) -> None:
    decision = decide(pairs_available=pairs_available)
    assert decision.stop
    assert decision.reason == Reason.ALL_PAIRS_COMPARED
    assert "20 essays" in decision.message


# --- precedence -----------------------------------------------------------------------------


def test_insufficient_essays_comes_first() -> None:
    decision = decide(n_items=1, change_se=0.0, reliability=0.95, submitted=400)
    assert decision.reason == Reason.INSUFFICIENT_ESSAYS


def test_reliability_comes_before_stability_and_budget() -> None:
    decision = decide(reliability=0.95, change_se=0.0, submitted=400, pairs_available=0)
    assert decision.reason == Reason.RELIABILITY_REACHED


def test_stability_comes_before_budget_and_pairs() -> None:
    decision = decide(change_se=0.0, submitted=400, pairs_available=0)
    assert decision.reason == Reason.SCORES_STABLE


def test_budget_comes_before_pairs() -> None:
    assert decide(submitted=400, pairs_available=0).reason == Reason.BUDGET_EXHAUSTED


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_items": -1}, "n_items must be >= 0"),
        ({"results": -1}, "results must be >= 0"),
        ({"submitted": 50}, r"results \(100\) cannot exceed submitted \(50\)"),
        ({"max_total": -5}, "max_total must be >= 0"),
        ({"min_results_for_stability": -1}, "min_results_for_stability must be >= 0"),
        ({"results": 1.5}, "results must be an integer"),
        ({"pairs_available": True}, "pairs_available must be an integer"),
        ({"stability_threshold_se": 0.0}, "stability_threshold_se must be > 0"),
        ({"stability_threshold_se": math.nan}, "stability_threshold_se must be > 0"),
        ({"change_se": -0.1}, "change_se must be a finite number >= 0"),
        ({"change_se": math.inf}, "change_se must be a finite number >= 0"),
        ({"reliability": math.nan}, "reliability must be a finite number <= 1"),
        ({"reliability": 1.5}, "reliability must be a finite number <= 1"),
        ({"reliability_target": 1.0}, r"reliability_target must be in \(0, 1\)"),
        ({"reliability_target": 0.0}, r"reliability_target must be in \(0, 1\)"),
    ],
)
def test_rejects_bad_input_naming_it(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(**overrides)


# --- max_score_change -----------------------------------------------------------------------


def test_max_score_change_is_the_largest_absolute_change() -> None:
    assert max_score_change([0.0, 1.0, -1.0], [0.1, 0.7, -1.05]) == pytest.approx(0.3)


def test_max_score_change_is_none_without_a_previous_fit() -> None:
    assert max_score_change(None, [0.0, 1.0]) is None
    assert max_score_change([], []) is None


def test_max_score_change_of_identical_fits_is_zero() -> None:
    assert max_score_change([0.5, -0.5], [0.5, -0.5]) == 0.0


@pytest.mark.parametrize(
    ("previous", "current", "message"),
    [
        ([0.0, 1.0], [0.0], "differ in length"),
        ([0.0, math.nan], [0.0, 1.0], "finite"),
        ([0.0, 1.0], [math.inf, 1.0], "finite"),
    ],
)
def test_max_score_change_rejects_bad_input(
    previous: list[float], current: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        max_score_change(previous, current)


# --- score_change_se ------------------------------------------------------------------------


def test_score_change_se_is_the_root_mean_square_change_in_standard_errors() -> None:
    # changes 0.1, -0.3, 0.0 over SEs 0.5, 1.0, 2.0 -> 0.2, 0.3, 0 SEs; RMS sqrt(0.13 / 3)
    change = score_change_se([0.0, 1.0, -1.0], [0.1, 0.7, -1.0], [0.5, 1.0, 2.0])
    assert change == pytest.approx(math.sqrt(0.13 / 3))


def test_the_same_change_counts_less_for_an_uncertain_score() -> None:
    certain = score_change_se([0.0, 0.0], [0.4, -0.4], [0.2, 0.2])
    uncertain = score_change_se([0.0, 0.0], [0.4, -0.4], [2.0, 2.0])
    assert certain == pytest.approx(2.0)
    assert uncertain == pytest.approx(0.2)


def test_score_change_se_is_none_without_a_previous_fit() -> None:
    assert score_change_se(None, [0.0, 1.0], [1.0, 1.0]) is None
    assert score_change_se([], [], []) is None


@pytest.mark.parametrize(
    ("previous", "current", "ses", "message"),
    [
        ([0.0, 1.0], [0.0], [1.0], "differ in length"),
        ([0.0, 1.0], [0.0, 1.0], [1.0], "differ in length"),
        ([0.0, math.nan], [0.0, 1.0], [1.0, 1.0], "finite"),
        ([0.0, 1.0], [0.0, 1.0], [1.0, 0.0], "standard errors must all be finite numbers > 0"),
        ([0.0, 1.0], [0.0, 1.0], [math.inf, 1.0], "standard errors must all be finite"),
    ],
)
def test_score_change_se_rejects_bad_input(
    previous: list[float], current: list[float], ses: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        score_change_se(previous, current, ses)
