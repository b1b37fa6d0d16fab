"""A circuit breaker for calls to one remote service (pure, in-process, one event loop)."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Circuit states: closed (calls flow), open (calls refused), half_open (one trial)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive faults -> half-open after `reset_seconds`,
    when one trial call goes through: its success closes the circuit, its failure re-opens it.

    The caller asks `try_acquire()` before each call, then reports the call's verdict with
    `record_success()` / `record_failure()`, or `release()` when the call never reached the
    service. `clock` gives monotonic seconds (tests pass a fake).
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

    @property
    def is_open(self) -> bool:
        """True unless the circuit is closed (half-open, with or without its trial, counts)."""
        return self._opened_at is not None

    def try_acquire(self) -> float | None:
        """None when a call may go ahead, else seconds until the circuit may let one through.

        In half-open state only one caller at a time gets through (the trial); the others get
        `reset_seconds`, the longest the circuit stays open should the trial fail.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return None
        assert self._opened_at is not None
        if state is BreakerState.HALF_OPEN:
            if not self._trial_running:
                self._trial_running = True
                return None
            return self._reset
        return max(0.0, self._opened_at + self._reset - self._clock())

    def record_success(self) -> None:
        """A call got an answer from the service (or failed through no fault of the
        service's): close the circuit and reset the fault count."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """A call failed through the service's fault (5xx, timeout, connection): count it,
        and open the circuit (again) at the threshold or when it was the trial."""
        self._failures += 1
        if self._trial_running or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def release(self) -> None:
        """A call that acquired the breaker ended without a verdict on the service."""
        self._trial_running = False
