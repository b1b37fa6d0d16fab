"""Retry delays: capped exponential backoff (with or without full jitter) and Retry-After hints.

Pure functions; the callers sleep. "Full jitter" is from M. Brooker, "Exponential Backoff And
Jitter", AWS Architecture Blog (2015): a uniform draw under the exponential ceiling spreads the
retries of many clients, so they do not hit a recovering service together.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 1000
"""The ceiling stops doubling here: 2.0**1000 is still a finite float, so a very large
attempt number cannot raise OverflowError (the cap has long been reached by then)."""

_SHARED_RNG = random.Random()


def exponential_backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: bool = True,
    floor: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry `attempt` (1 = the first retry, after the first failure).

    The ceiling is `min(cap, base * 2**(attempt - 1))` seconds. With `jitter` (full jitter)
    the wait is uniform in [floor, ceiling], drawn from `rng` (a process-wide generator when
    None); without it the wait is the ceiling itself and `floor` and `rng` are not used.

    Raises ValueError when `attempt` < 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS))
    if not jitter:
        return ceiling
    return (rng or _SHARED_RNG).uniform(floor, ceiling)


def clamp_retry_after(hint: float, *, floor: float, cap: float) -> float:
    """A server's Retry-After hint (seconds) limited to [floor, cap] seconds: a hint of 0 does
    not make a client hammer the server, and a very long one does not park it for hours."""
    return min(max(hint, floor), cap)
