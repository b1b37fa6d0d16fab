"""The circuit breaker the operator's provider client and the workers' provider calls share."""

from __future__ import annotations

import pytest

from cj_plumbing.breaker import BreakerState, CircuitBreaker


def state(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call so the type checker does not narrow it."""
    return breaker.state


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

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


def test_breaker_closes_after_a_successful_trial() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    assert breaker.try_acquire() == 10.0
    clock.now += 10
    assert breaker.try_acquire() is None
    assert breaker.try_acquire() is not None
    breaker.record_success()
    assert not breaker.is_open
    assert breaker.try_acquire() is None


def test_a_released_trial_lets_the_next_caller_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.record_failure()
    clock.now = 5
    assert breaker.try_acquire() is None
    assert breaker.try_acquire() == 5.0  # while the trial runs: the reset time
    breaker.release()  # the trial never reached the service
    assert breaker.is_open
    assert breaker.try_acquire() is None
