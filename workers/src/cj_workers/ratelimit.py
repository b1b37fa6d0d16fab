"""Per-provider request and token limits shared by every worker through Redis.

Fixed one-minute windows on the Redis server's clock (so pods' clocks do not matter): a call
reserves one request and its estimated tokens in the current window, or learns how long to
wait for the next one. After the call the reservation is corrected to the reported usage.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from cj_workers.keys import RedisKeys
from cj_workers.settings import RateLimit
from common_core import LLMProviderType

# KEYS: request counter base, token counter base. ARGV: rpm, tpm, tokens.
# Returns {granted (0/1), window (minute number), wait_ms}.
_ACQUIRE = """
local now = redis.call('TIME')
local window = math.floor(tonumber(now[1]) / 60)
local wait_ms = (60 - (tonumber(now[1]) % 60)) * 1000 - math.floor(tonumber(now[2]) / 1000)
local rkey = KEYS[1] .. ':' .. window
local tkey = KEYS[2] .. ':' .. window
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used_r = tonumber(redis.call('GET', rkey) or '0')
local used_t = tonumber(redis.call('GET', tkey) or '0')
if rpm > 0 and used_r + 1 > rpm then return {0, window, wait_ms} end
if tpm > 0 and used_t > 0 and used_t + tokens > tpm then return {0, window, wait_ms} end
redis.call('INCR', rkey)
redis.call('INCRBY', tkey, tokens)
redis.call('EXPIRE', rkey, 120)
redis.call('EXPIRE', tkey, 120)
return {1, window, 0}
"""


@dataclass(frozen=True)
class Reservation:
    """A granted slot: the window it was counted in and the tokens reserved."""

    provider: LLMProviderType
    window: int
    tokens: int


class RedisRateLimiter:
    """`acquire` reserves a slot or says how long to wait; `settle` corrects the tokens."""

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, limits: dict[LLMProviderType, RateLimit]
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._limits = limits
        self._script = redis.register_script(_ACQUIRE)

    def limited(self, provider: LLMProviderType) -> bool:
        """True when `provider` has a request or token limit."""
        limit = self._limits.get(provider)
        return limit is not None and (limit.requests_per_minute or limit.tokens_per_minute) > 0

    async def acquire(self, provider: LLMProviderType, tokens: int) -> Reservation | float:
        """A Reservation, or the seconds to wait before trying again (next window)."""
        limit = self._limits.get(provider, RateLimit())
        granted, window, wait_ms = await self._script(
            keys=[self._keys.rate(provider, "requests"), self._keys.rate(provider, "tokens")],
            args=[limit.requests_per_minute, limit.tokens_per_minute, tokens],
        )
        if int(granted):
            return Reservation(provider, int(window), tokens)
        return max(0.05, int(wait_ms) / 1000)

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Replace the reserved token estimate by the provider's reported usage."""
        delta = actual_tokens - reservation.tokens
        if delta:
            key = f"{self._keys.rate(reservation.provider, 'tokens')}:{reservation.window}"
            await self._redis.incrby(key, delta)
