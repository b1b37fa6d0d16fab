"""Projected grades from anchors: calibration by simulation with known grades, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import expit

from cj_operator.scoring.grades import project_grades

GRADES = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
THRESHOLDS = np.array([-4.0, -1.0, 2.0, 5.0])
SLOPE = 4.0
SE = 0.5


NULL_THRESHOLDS = np.array([-1.0, -0.25, 0.5, 1.25])
"""The null case's grade thresholds: all five grades common, none depending on the score."""


def _simulated(
    seed: int, n: int = 100, slope: float = SLOPE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True abilities, estimated scores (truth + N(0, SE^2), centred) and true grades drawn from
    the proportional-odds model itself; `slope` 0 is the null case (grades independent of the
    essays' quality, drawn with NULL_THRESHOLDS)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.5, n)
    thresholds = THRESHOLDS if slope else NULL_THRESHOLDS
    cumulative = expit(thresholds[None, :] - slope * theta[:, None])
    category = (rng.random(n)[:, None] > cumulative).sum(axis=1)
    scores = theta + rng.normal(0.0, SE, n)
    return theta, scores - scores.mean(), GRADES[category]


def _coverage_and_width(
    n_anchors: int, slope: float, batches: int = 8
) -> tuple[float, float, list[float]]:
    """Over `batches` simulated batches: the share of non-anchor essays whose 95% interval holds the
    true grade, the intervals' mean width (grade units) and the fitted slopes."""
    covered: list[bool] = []
    widths: list[float] = []
    slopes: list[float] = []
    for seed in range(batches):
        _, scores, grades = _simulated(seed, slope=slope)
        rng = np.random.default_rng(100 + seed)
        anchors = {int(i): float(grades[i]) for i in rng.choice(100, n_anchors, replace=False)}
        projection = project_grades(list(scores), [SE] * 100, anchors, seed=seed)
        assert projection is not None
        slopes.append(projection.slope)
        for i in range(100):
            if i in anchors:
                continue
            p = projection.essays[i]
            assert p is not None
            covered.append(p.low <= grades[i] <= p.high)
            widths.append(p.high - p.low)
    return float(np.mean(covered)), float(np.mean(widths)), slopes


@pytest.mark.parametrize("n_anchors", [10, 20])
def test_the_95_percent_intervals_cover_the_true_grades_of_the_other_essays(
    n_anchors: int,
) -> None:
    coverage, width, _ = _coverage_and_width(n_anchors, SLOPE)
    assert coverage >= 0.93
    # informative: on average the interval leaves out at least one of the five grades
    assert width < 3.5


@pytest.mark.parametrize("n_anchors", [10, 20])
def test_a_weak_link_between_grade_and_score_keeps_the_coverage(n_anchors: int) -> None:
    # slope 1: one logit of score moves the cumulative odds by one logit only
    coverage, _, _ = _coverage_and_width(n_anchors, 1.0, batches=20)
    assert coverage >= 0.93


@pytest.mark.parametrize("n_anchors", [10, 20])
def test_grades_unrelated_to_the_scores_give_intervals_that_say_so(n_anchors: int) -> None:
    """The null case: the judge's scale says nothing about the grades. The intervals still hold
    the true grade at the stated rate, by spanning (nearly) every grade, and the fitted slope is
    not systematically away from 0. Twenty batches: with 10 anchors a single batch whose anchors
    miss a common grade covers as little as 0.7 (coverage SD over batches 0.09)."""
    coverage, width, slopes = _coverage_and_width(n_anchors, 0.0, batches=20)
    assert coverage >= 0.93
    assert width >= 3.5  # of 4: five grades, nothing to narrow them
    assert abs(float(np.mean(slopes))) < 0.5


def test_projected_grades_rise_with_the_score() -> None:
    _, scores, grades = _simulated(3)
    anchors = {i: float(grades[i]) for i in range(0, 100, 5)}
    projection = project_grades(list(scores), [SE] * 100, anchors)
    assert projection is not None
    order = np.argsort(scores)
    projected = [projection.essays[i] for i in order]
    expected = [p.expected for p in projected if p is not None]
    assert len(expected) == 100
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(expected))
    assert projection.slope > 0
    assert sum(projection.distribution().values()) == 100


def test_perfectly_ordered_anchors_give_a_finite_model() -> None:
    scores = [-2.0, -1.0, 0.0, 1.0, 2.0, 0.5]
    anchors = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 5.0}
    projection = project_grades(scores, [0.4] * 6, anchors)
    assert projection is not None
    assert math.isfinite(projection.slope)
    assert all(math.isfinite(c) for c in projection.thresholds)
    between = projection.essays[5]
    assert between is not None
    assert 3.0 <= between.grade <= 4.0
    assert between.low <= between.grade <= between.high


def test_an_essay_without_a_score_has_no_projection() -> None:
    projection = project_grades([-1.0, 0.0, 1.0, None], [0.5, 0.5, 0.5, None], {0: 1, 1: 2, 2: 3})
    assert projection is not None
    assert projection.essays[3] is None
    assert projection.anchors == 3


@pytest.mark.parametrize(
    "anchors",
    [{}, {0: 1.0, 1: 2.0}, {0: 2.0, 1: 2.0, 2: 2.0}],
    ids=["none", "two", "one-grade"],
)
def test_too_few_anchors_or_grades_give_no_projection(anchors: dict[int, float]) -> None:
    assert project_grades([-1.0, 0.0, 1.0], [0.5] * 3, anchors) is None


@pytest.mark.parametrize(
    ("scores", "ses", "anchors", "message"),
    [
        ([0.0, 1.0], [0.5], {}, "differ in length"),
        ([0.0, math.nan], [0.5, 0.5], {}, r"scores\[1\] is not finite"),
        ([0.0, 1.0], [0.5, 0.0], {}, r"standard_errors\[1\] must be a finite number > 0"),
        ([0.0, 1.0], [0.5, 0.5], {2: 1.0}, "anchor index 2 is out of range"),
        ([0.0, 1.0], [0.5, 0.5], {0: math.inf}, "the grade of anchor 0 is not finite"),
    ],
)
def test_bad_input_is_named(
    scores: list[float], ses: list[float], anchors: dict[int, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        project_grades(scores, ses, anchors)
