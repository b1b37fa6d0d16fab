"""What a bad-input test reads back from the provider API's queue."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.support.stack import Stack


async def queued(stack: Stack, client: aioredis.Redis) -> int:
    """Entries in the stack's request streams (both priorities)."""
    return sum((await stack.queue(client).depth()).values())
