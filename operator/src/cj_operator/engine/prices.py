"""The judges' prices, read from the provider API's model manifest and kept for a while.

The engine needs prices to reserve each comparison's estimated cost (`cj_operator.costing`).
They come from `GET /api/v1/models` (the manifest the workers charge by) at most once every
`ttl_seconds`; when the API cannot be reached the last list read stays in use, and without
one the next try is at most every `retry_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from cj_operator.provider_client import ProviderApi, ProviderUnavailableError
from common_core import ModelInfo

log = structlog.get_logger("cj_operator.engine")


class PriceCache:
    """The latest model list of the provider API (module docstring)."""

    def __init__(
        self,
        provider: ProviderApi,
        *,
        ttl_seconds: float = 300.0,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._models: list[ModelInfo] | None = None
        self._next_read = 0.0

    async def current(self) -> Sequence[ModelInfo] | None:
        """The model list, read again when it is older than the TTL; None while none could be
        read yet."""
        now = self._clock()
        if now < self._next_read:
            return self._models
        try:
            self._models = await self._provider.models()
            self._next_read = now + self._ttl
        except ProviderUnavailableError as exc:
            self._next_read = now + self._retry
            log.warning(
                "could not read the model prices; using the last ones read",
                error=str(exc),
                have_prices=self._models is not None,
            )
        return self._models
