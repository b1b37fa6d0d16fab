"""Wait for a condition that another process makes true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Await `check()` every 0.1 s until true; AssertionError naming `what` after `within` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what} after {within} s")
