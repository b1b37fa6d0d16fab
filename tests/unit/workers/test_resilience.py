"""Backoff and the circuit breaker."""

from __future__ import annotations

import random

import pytest

from cj_workers.resilience import BreakerState, CircuitBreaker, backoff_seconds


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 5.0)]:
        samples = [backoff_seconds(attempt, 0.5, 5.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8
    with pytest.raises(ValueError, match="from 1"):
        backoff_seconds(0, 1, 1, rng)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call so the type checker does not narrow it."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_reset() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.try_acquire() is None
        breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.try_acquire() == pytest.approx(10)
    clock.now = 10
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.try_acquire() is None  # the trial
    assert breaker.try_acquire() is not None  # only one trial at a time
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    clock.now = 20
    assert breaker.try_acquire() is None
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.try_acquire() is None


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=2, reset_seconds=1, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
