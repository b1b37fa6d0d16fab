"""Retry delays: full-jitter and plain exponential backoff, Retry-After clamping."""

from __future__ import annotations

import random

import pytest

from cj_plumbing.backoff import clamp_retry_after, exponential_backoff


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 5.0)]:
        samples = [exponential_backoff(attempt, base=0.5, cap=5.0, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8
    with pytest.raises(ValueError, match="from 1"):
        exponential_backoff(0, base=1, cap=1, rng=rng)


def test_jitter_draws_from_the_floor_up() -> None:
    rng = random.Random(2)
    for attempt, ceiling in [(1, 2.0), (3, 8.0), (6, 60.0), (40, 60.0)]:
        samples = [
            exponential_backoff(attempt, base=2.0, cap=60.0, floor=0.5, rng=rng) for _ in range(200)
        ]
        assert all(0.5 <= s <= ceiling for s in samples)
        assert min(samples) < 0.5 + ceiling * 0.2 and max(samples) > ceiling * 0.8


def test_without_jitter_the_wait_doubles_up_to_the_cap() -> None:
    waits = [exponential_backoff(a, base=0.5, cap=30.0, jitter=False) for a in range(1, 9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert exponential_backoff(10**6, base=1.0, cap=7.0, jitter=False) == 7.0  # no overflow


def test_retry_after_is_clamped() -> None:
    assert clamp_retry_after(0.0, floor=1.0, cap=300.0) == 1.0
    assert clamp_retry_after(42.5, floor=1.0, cap=300.0) == 42.5
    assert clamp_retry_after(3600.0, floor=1.0, cap=300.0) == 300.0


def test_reproduces_the_batch_engines_formula() -> None:
    """BatchEngine._backoff: uniform(0.5, min(60, 2**attempt)), a hint clamped to [1, 300]."""
    ours, theirs = random.Random(3), random.Random(3)
    for attempt in range(1, 12):
        expected = theirs.uniform(0.5, min(60.0, 2.0**attempt))
        assert exponential_backoff(attempt, base=2.0, cap=60.0, floor=0.5, rng=ours) == expected
    for hint in (0.0, 1.0, 7.5, 300.0, 301.0):
        assert clamp_retry_after(hint, floor=1.0, cap=300.0) == min(max(hint, 1.0), 300.0)
