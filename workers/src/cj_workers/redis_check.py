"""Start-up check of the Redis the provider side queues in: it must never evict keys.

A Redis with an evicting `maxmemory-policy` (allkeys-*, volatile-*) silently drops stream
entries under memory pressure: requests the API already answered 202 for would vanish, and
the operator would notice only after its overdue cutoff. `noeviction` makes a full Redis
refuse writes instead (the API then answers 5xx and the operator retries). So the API and the
workers read `CONFIG GET maxmemory-policy` when they start and refuse to run with any other
policy. A managed Redis that refuses CONFIG (disabled or renamed command, ACL without
`+config`) cannot be checked: that is logged and the process goes on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)

REQUIRED_POLICY = "noeviction"


class EvictingRedisError(RuntimeError):
    """Redis is configured to evict keys; the message is the one-line reason and the fix."""


def eviction_problem(policy: str) -> str | None:
    """None when `policy` (a `maxmemory-policy` value) never evicts keys, else the error line.

    Only `noeviction` keeps every key (Redis documentation, "Key eviction"); every other
    policy, known or not, is refused.
    """
    if policy.strip().lower() == REQUIRED_POLICY:
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}: it evicts keys, which drops queued comparison "
        f"requests; set maxmemory-policy {REQUIRED_POLICY} (redis.conf, --maxmemory-policy "
        f"{REQUIRED_POLICY}, or CONFIG SET maxmemory-policy {REQUIRED_POLICY})"
    )


async def require_noeviction(redis: aioredis.Redis, wait_seconds: float = 30.0) -> str | None:
    """Refuse an evicting Redis: raises `EvictingRedisError` (after logging its message).

    Returns the policy read, or None when Redis refused CONFIG GET (logged as a warning: the
    check could not be made). An unreachable Redis is asked again every second for
    `wait_seconds` (a Redis starting alongside), then its connection error propagates.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            reply: dict[Any, Any] = dict(await redis.config_get("maxmemory-policy"))
            break
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("redis unreachable; checking maxmemory-policy again", error=str(exc))
            await asyncio.sleep(1.0)
        except ResponseError as exc:
            log.warning(
                "could not check Redis maxmemory-policy (CONFIG refused); make sure it is "
                f"{REQUIRED_POLICY}",
                error=str(exc),
            )
            return None
    raw = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy"))
    if raw is None:
        log.warning(
            "could not check Redis maxmemory-policy (CONFIG GET returned nothing); make sure "
            f"it is {REQUIRED_POLICY}"
        )
        return None
    policy = raw.decode() if isinstance(raw, bytes) else str(raw)
    problem = eviction_problem(policy)
    if problem is not None:
        log.error(problem)
        raise EvictingRedisError(problem)
    log.info("redis maxmemory-policy checked", policy=policy)
    return policy
