"""What the provider API's routes share: the per-process state and the error response."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
import structlog
from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from cj_plumbing.kafka_admin import list_topics
from cj_workers.api.validation import HTTP_STATUS
from cj_workers.callback_topics import CallbackTopicPolicy
from cj_workers.keys import RedisKeys
from cj_workers.manifest import ModelManifest
from cj_workers.metrics import ApiMetrics
from cj_workers.queue import RequestQueue
from cj_workers.settings import ProviderApiSettings
from common_core import ErrorDetail

log = structlog.get_logger("cj_workers.api.app")  # one logger name for the whole API


class TopicChecker:
    """Knows which topics exist on the broker (cached; an unknown topic forces one refresh).

    `exists` returns None when Kafka cannot be asked: the API then accepts the topic (the
    worker keeps the entry pending until it can publish).
    """

    def __init__(self, bootstrap_servers: str, cache_seconds: float) -> None:
        self._servers = bootstrap_servers
        self._cache_seconds = cache_seconds
        self._topics: set[str] = set()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self) -> bool:
        async with self._lock:
            try:
                self._topics = await list_topics(self._servers, timeout_s=5.0)
            except Exception as exc:
                log.warning("cannot list Kafka topics", error=f"{type(exc).__name__}: {exc}")
                return False
            self._fetched_at = time.monotonic()
            return True

    async def exists(self, topic: str) -> bool | None:
        """True/False from the broker's topic list; None when Kafka is unreachable."""
        fresh = time.monotonic() - self._fetched_at < self._cache_seconds
        if fresh and topic in self._topics:
            return True
        if not await self._refresh():
            return None
        return topic in self._topics

    async def reachable(self) -> bool:
        """True when the broker answered within the cache period (refreshes otherwise)."""
        if time.monotonic() - self._fetched_at < min(self._cache_seconds, 5.0):
            return True
        return await self._refresh()


class ApiState:
    """What the routes share: settings, Redis queue, manifest, topic checker, metrics."""

    def __init__(self, settings: ProviderApiSettings, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.queue = RequestQueue(
            redis, RedisKeys(settings.redis_key_prefix), settings.consumer_group
        )
        self.manifest = ModelManifest.load(settings.model_manifest_path)
        self.topics = TopicChecker(settings.kafka_bootstrap_servers, settings.topic_cache_seconds)
        self.topic_policy = CallbackTopicPolicy.build(
            settings.callback_topics,
            settings.callback_topic_pattern,
            settings.refused_callback_topics,
        )
        self.registry = CollectorRegistry()
        self.metrics = ApiMetrics(self.registry)


def api_state(request: Request) -> ApiState:
    """The application's `ApiState` (a FastAPI dependency; set by the app's lifespan)."""
    api: ApiState = request.app.state.api
    return api


def error_response(detail: ErrorDetail, headers: dict[str, str] | None = None) -> JSONResponse:
    """`detail` as JSON with the HTTP status of its error code (400 when it has none)."""
    return JSONResponse(
        detail.model_dump(mode="json"),
        status_code=HTTP_STATUS.get(detail.error_code, 400),
        headers=headers,
    )
