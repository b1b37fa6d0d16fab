"""Retry backoff and the per-provider circuit breaker (pure, in-process)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import StrEnum


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry `attempt` (1 = first): uniform in [0, min(cap, base * 2**(a-1))].

    "Full jitter" from M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog
    (2015): spreads retries of many workers so they do not hit the provider together.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


class BreakerState(StrEnum):
    """Circuit states: closed (calls flow), open (calls refused), half_open (one trial)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `threshold` consecutive provider faults; after `reset_seconds` lets one
    trial call through (half-open): its success closes the circuit, its failure re-opens it.

    `clock` returns seconds (monotonic); tests pass a fake.
    """

    def __init__(
        self,
        threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """The current state (open turns half-open once `reset_seconds` have passed)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def try_acquire(self) -> float | None:
        """None when a call may go ahead, else the seconds until the circuit may let one through.

        In half-open state only one caller at a time gets through (the trial).
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return None
        assert self._opened_at is not None
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return None
        return max(0.0, self._opened_at + self._reset - self._clock())

    def record_success(self) -> None:
        """A call succeeded (or failed for a reason that is not the provider's fault)."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """A call failed through the provider's fault (5xx, timeout, connection)."""
        self._failures += 1
        if self._trial_running or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def release(self) -> None:
        """A call that acquired the breaker ended without a verdict on the provider."""
        self._trial_running = False
