"""The engine's price cache: read once per TTL, the last list kept while the API is down."""

from __future__ import annotations

from collections.abc import Sequence

from cj_operator.engine.prices import PriceCache
from cj_operator.provider_client import ProviderUnavailableError
from common_core import (
    BatchCancelResponse,
    LLMComparisonBulkResponse,
    LLMComparisonRequest,
    LLMProviderType,
    ModelInfo,
)

HAIKU = ModelInfo(
    provider=LLMProviderType.ANTHROPIC,
    model="claude-haiku-4-5",
    input_usd_per_mtok=1.0,
    output_usd_per_mtok=5.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Provider:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.models_list = [HAIKU]

    async def submit(self, requests: Sequence[LLMComparisonRequest]) -> LLMComparisonBulkResponse:
        raise NotImplementedError

    async def cancel(self, batch_uid: str) -> BatchCancelResponse:
        raise NotImplementedError

    async def models(self) -> list[ModelInfo]:
        self.calls += 1
        if self.down:
            raise ProviderUnavailableError("down")
        return list(self.models_list)


async def test_prices_are_read_once_per_ttl_and_kept_while_the_api_is_down() -> None:
    provider, clock = Provider(), Clock()
    cache = PriceCache(provider, ttl_seconds=300.0, retry_seconds=10.0, clock=clock)
    provider.down = True
    assert await cache.current() is None
    clock.now = 5.0
    assert await cache.current() is None and provider.calls == 1  # no retry before 10 s
    provider.down = False
    clock.now = 10.0
    assert await cache.current() == [HAIKU] and provider.calls == 2
    clock.now = 200.0
    assert await cache.current() == [HAIKU] and provider.calls == 2  # fresh for 300 s
    provider.down = True
    clock.now = 311.0
    assert await cache.current() == [HAIKU] and provider.calls == 3  # the last list stays
