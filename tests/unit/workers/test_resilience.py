"""Backoff of the provider calls."""

from __future__ import annotations

import random

import pytest

from cj_workers.resilience import backoff_seconds


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 5.0)]:
        samples = [backoff_seconds(attempt, 0.5, 5.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8
    with pytest.raises(ValueError, match="from 1"):
        backoff_seconds(0, 1, 1, rng)
