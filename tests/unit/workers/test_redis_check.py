"""The start-up decision on Redis' maxmemory-policy (no Redis: the client is a fake)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from cj_workers.redis_check import EvictingRedisError, eviction_problem, require_noeviction

EVICTING = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "some-future-policy",
]


def test_noeviction_is_accepted() -> None:
    assert eviction_problem("noeviction") is None
    assert eviction_problem("NoEviction") is None


@pytest.mark.parametrize("policy", EVICTING)
def test_every_other_policy_is_refused_with_one_line_naming_it_and_the_fix(policy: str) -> None:
    problem = eviction_problem(policy)
    assert problem is not None
    assert "\n" not in problem
    assert repr(policy) in problem
    assert "set maxmemory-policy noeviction" in problem


class FakeRedis:
    """Answers CONFIG GET with a reply, or raises."""

    def __init__(self, reply: dict[Any, Any] | Exception) -> None:
        self.reply = reply
        self.asked: list[str] = []

    async def config_get(self, pattern: str) -> dict[Any, Any]:
        self.asked.append(pattern)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


async def test_an_evicting_policy_raises() -> None:
    fake = FakeRedis({b"maxmemory-policy": b"allkeys-lru"})
    with pytest.raises(EvictingRedisError, match="'allkeys-lru'"):
        await require_noeviction(fake)  # type: ignore[arg-type]  # the one method used
    assert fake.asked == ["maxmemory-policy"]


async def test_noeviction_passes_and_is_returned() -> None:
    fake = FakeRedis({"maxmemory-policy": "noeviction"})
    assert await require_noeviction(fake) == "noeviction"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    [
        ResponseError("ERR unknown command 'CONFIG', with args beginning with: 'GET'"),
        ResponseError("NOPERM this user has no permissions to run the 'config|get' command"),
        {},
    ],
    ids=["config-disabled", "acl-refused", "empty-reply"],
)
async def test_a_redis_that_refuses_config_is_logged_as_unchecked_and_accepted(
    reply: dict[Any, Any] | Exception,
) -> None:
    fake = FakeRedis(reply)
    with capture_logs() as logs:
        assert await require_noeviction(fake) is None  # type: ignore[arg-type]
    [line] = logs
    assert line["log_level"] == "warning"
    assert line["event"].startswith("could not check Redis maxmemory-policy")
    assert "noeviction" in line["event"]


async def test_the_refusal_is_logged_as_one_error_line() -> None:
    with capture_logs() as logs, pytest.raises(EvictingRedisError):
        await require_noeviction(FakeRedis({"maxmemory-policy": "volatile-ttl"}))  # type: ignore[arg-type]
    [line] = logs
    assert line["log_level"] == "error"
    assert "'volatile-ttl'" in line["event"]
