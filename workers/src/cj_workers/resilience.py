"""Retry backoff of the provider calls (pure)."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry `attempt` (1 = first): uniform in [0, min(cap, base * 2**(a-1))].

    "Full jitter" from M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog
    (2015): spreads retries of many workers so they do not hit the provider together.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))
