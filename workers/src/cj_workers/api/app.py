"""The provider API: validate comparison requests, enqueue them, answer 202.

Routes: POST /api/v1/comparison, POST /api/v1/comparisons (bulk), POST
/api/v1/batches/{batch_id}/cancel, GET /api/v1/models, /healthz, /readyz, /metrics, and the
OpenAPI docs (/docs, /openapi.json). Errors are ErrorDetail JSON. No status or result
polling: results travel only as Kafka events.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import redis.asyncio as aioredis
import structlog
import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cj_plumbing.kafka_admin import list_topics
from cj_plumbing.logs import configure_logging
from cj_workers.api.validation import (
    HTTP_STATUS,
    check_request,
    error,
    from_validation_errors,
    parse_request,
)
from cj_workers.bootstrap_topics import bootstrap_at_start
from cj_workers.keys import RedisKeys
from cj_workers.manifest import ModelInfo, ModelManifest
from cj_workers.metrics import ApiMetrics
from cj_workers.queue import EnqueueOutcome, RequestQueue, connect_redis
from cj_workers.settings import ProviderApiSettings
from common_core import (
    BULK_MAX_ITEMS,
    BatchCancelResponse,
    BulkItemOutcome,
    ErrorDetail,
    LLMComparisonBulkRequest,
    LLMComparisonBulkResponse,
    LLMComparisonRequest,
    LLMErrorCode,
    LLMQueuedResponse,
    QueuedRequest,
)

log = structlog.get_logger(__name__)

ASSUMED_DRAIN_PER_SECOND = 1.0
"""Drain rate assumed for the wait estimate before any worker has finished a request."""


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
        self.topic_pattern = re.compile(settings.callback_topic_pattern)
        self.registry = CollectorRegistry()
        self.metrics = ApiMetrics(self.registry)


def _error_response(detail: ErrorDetail, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        detail.model_dump(mode="json"),
        status_code=HTTP_STATUS.get(detail.error_code, 400),
        headers=headers,
    )


def create_app(settings: ProviderApiSettings) -> FastAPI:
    """The FastAPI application for `settings` (Redis and Kafka are connected in its lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_redis(settings.redis_url, settings.redis_max_connections)
        app.state.api = ApiState(settings, redis)
        await bootstrap_at_start(settings)
        try:
            yield
        finally:
            await redis.aclose()

    app = FastAPI(
        title="cj-operator provider API",
        version="1.0.0",
        description=(
            "Queue pairwise essay comparisons for LLM judges. Results are published as "
            "`EventEnvelope[LLMComparisonResultV1]` on each request's `callback_topic`; "
            "there are no polling endpoints."
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(_UnauthorisedError)
    async def _unauthorised(_: Request, __: Exception) -> JSONResponse:
        detail = error(
            LLMErrorCode.INVALID_CONFIG,
            "missing or wrong bearer token (Authorization: Bearer <CJ_API_AUTH_TOKEN>)",
            "authenticate",
        )
        return JSONResponse(
            detail.model_dump(mode="json"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        detail = from_validation_errors(exc.errors(), body, _operation(request))
        request.app.state.api.metrics.submissions.labels(detail.error_code.value).inc()
        return _error_response(detail)

    async def _admit(
        api: ApiState, req: LLMComparisonRequest, operation: str
    ) -> ErrorDetail | None:
        problem = check_request(
            req,
            topic_pattern=api.topic_pattern,
            max_essay_chars=settings.max_essay_chars,
            max_prompt_chars=settings.max_prompt_chars,
            manifest=api.manifest,
            default_provider=None,
            operation=operation,
        )
        if (
            problem is None
            and settings.verify_callback_topic_exists
            and await api.topics.exists(req.callback_topic) is False
        ):
            problem = error(
                LLMErrorCode.INVALID_CALLBACK_TOPIC,
                f"callback_topic {req.callback_topic!r} does not exist on the broker "
                "(topics are not auto-created; run cj-bootstrap-topics or create it)",
                operation,
                req.correlation_id,
                callback_topic=req.callback_topic,
            )
        return problem

    def _queued(queued: QueuedRequest, outcome: EnqueueOutcome, ahead: int) -> LLMQueuedResponse:
        rate = outcome.drain_rate or ASSUMED_DRAIN_PER_SECOND
        return LLMQueuedResponse(
            queue_id=queued.queue_id,
            correlation_id=queued.correlation_id,
            queued_at=queued.queued_at,
            estimated_wait_seconds=round(ahead / rate, 3),
            priority=queued.priority,
        )

    def _queue_full(operation: str, cid: Any) -> ErrorDetail:
        return error(
            LLMErrorCode.QUEUE_FULL,
            f"the request queue is full; retry after {settings.queue_full_retry_after_seconds} s",
            operation,
            cid,
            retry_after_seconds=settings.queue_full_retry_after_seconds,
        )

    def _retry_after() -> dict[str, str]:
        return {"Retry-After": str(settings.queue_full_retry_after_seconds)}

    error_responses: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorDetail, "description": "invalid request (see error_code)"},
        401: {"model": ErrorDetail, "description": "missing or wrong bearer token"},
        413: {"model": ErrorDetail, "description": "CONTENT_TOO_LONG"},
        503: {"model": ErrorDetail, "description": "QUEUE_FULL (with Retry-After)"},
    }

    @app.post(
        "/api/v1/comparison",
        status_code=202,
        response_model=LLMQueuedResponse,
        responses=error_responses,
        dependencies=[Depends(_authorise)],
        summary="Queue one comparison; its result arrives on callback_topic",
    )
    async def submit(
        body: LLMComparisonRequest, api: Annotated[ApiState, Depends(_state)]
    ) -> Response:
        operation = "submit_comparison"
        problem = await _admit(api, body, operation)
        if problem:
            api.metrics.submissions.labels(problem.error_code.value).inc()
            return _error_response(problem)
        queued = QueuedRequest.from_request(body, settings.request_ttl_seconds)
        outcome = await api.queue.enqueue(
            [queued], settings.queue_high_water, settings.queue_low_water
        )
        _record_depth(api, outcome)
        if outcome.entry_ids[0] is None:
            api.metrics.submissions.labels(LLMErrorCode.QUEUE_FULL.value).inc()
            return _error_response(_queue_full(operation, body.correlation_id), _retry_after())
        api.metrics.submissions.labels("queued").inc()
        answer = _queued(queued, outcome, outcome.depth_before)
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)

    @app.post(
        "/api/v1/comparisons",
        response_model=LLMComparisonBulkResponse,
        status_code=202,
        responses={
            207: {"model": LLMComparisonBulkResponse, "description": "some items refused"},
            **error_responses,
        },
        dependencies=[Depends(_authorise)],
        summary=f"Queue up to {BULK_MAX_ITEMS} comparisons; one outcome per item",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/LLMComparisonBulkRequest"}
                    }
                },
            }
        },
    )
    async def submit_bulk(request: Request, api: Annotated[ApiState, Depends(_state)]) -> Response:
        operation = "submit_comparisons"
        try:
            raw = json.loads(await request.body())
        except ValueError as exc:
            return _error_response(
                error(LLMErrorCode.INVALID_PROMPT, f"body is not valid JSON: {exc}", operation)
            )
        items = raw.get("requests") if isinstance(raw, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= BULK_MAX_ITEMS:
            return _error_response(
                error(
                    LLMErrorCode.INVALID_PROMPT,
                    f'body must be {{"requests": [...]}} with 1 to {BULK_MAX_ITEMS} items',
                    operation,
                )
            )
        parsed: list[LLMComparisonRequest | ErrorDetail] = []
        for item in items:
            req = parse_request(item, operation)
            if isinstance(req, LLMComparisonRequest):
                req = await _admit(api, req, operation) or req
            parsed.append(req)
        to_queue = [
            QueuedRequest.from_request(p, settings.request_ttl_seconds)
            for p in parsed
            if isinstance(p, LLMComparisonRequest)
        ]
        outcome = (
            await api.queue.enqueue(to_queue, settings.queue_high_water, settings.queue_low_water)
            if to_queue
            else None
        )
        if outcome is not None:
            _record_depth(api, outcome)
        outcomes: list[BulkItemOutcome] = []
        queued_iter = iter(zip(to_queue, outcome.entry_ids if outcome else [], strict=True))
        ahead = outcome.depth_before if outcome else 0
        for index, (item, p) in enumerate(zip(items, parsed, strict=True)):
            if isinstance(p, ErrorDetail):
                cid = p.correlation_id or _item_correlation_id(item)
                outcomes.append(BulkItemOutcome(index=index, correlation_id=cid, error=p))
                api.metrics.submissions.labels(p.error_code.value).inc()
                continue
            queued, entry_id = next(queued_iter)
            assert outcome is not None
            if entry_id is None:
                full = _queue_full(operation, queued.correlation_id)
                outcomes.append(
                    BulkItemOutcome(index=index, correlation_id=queued.correlation_id, error=full)
                )
                api.metrics.submissions.labels(LLMErrorCode.QUEUE_FULL.value).inc()
                continue
            outcomes.append(
                BulkItemOutcome(
                    index=index,
                    correlation_id=queued.correlation_id,
                    queued=_queued(queued, outcome, ahead),
                )
            )
            ahead += 1
            api.metrics.submissions.labels("queued").inc()
        response = LLMComparisonBulkResponse(outcomes=outcomes)
        refused = [o.error for o in outcomes if o.error is not None]
        headers = (
            _retry_after()
            if any(e.error_code is LLMErrorCode.QUEUE_FULL for e in refused)
            else None
        )
        if not refused:
            status = 202
        elif len(refused) == len(outcomes) and len({e.error_code for e in refused}) == 1:
            status = HTTP_STATUS.get(refused[0].error_code, 400)
        else:
            status = 207
        return JSONResponse(response.model_dump(mode="json"), status_code=status, headers=headers)

    @app.post(
        "/api/v1/batches/{batch_id}/cancel",
        response_model=BatchCancelResponse,
        responses={401: error_responses[401]},
        dependencies=[Depends(_authorise)],
        summary="Cancel every queued request whose metadata batch_id matches",
    )
    async def cancel_batch(
        batch_id: str, api: Annotated[ApiState, Depends(_state)]
    ) -> BatchCancelResponse:
        await api.queue.cancel_batch(batch_id, settings.cancel_ttl_seconds)
        api.metrics.cancellations.inc()
        log.info("batch cancelled", batch_id=batch_id)
        return BatchCancelResponse(
            batch_id=batch_id,
            cancelled_at=datetime.now(UTC),
            ttl_seconds=settings.cancel_ttl_seconds,
        )

    @app.get("/api/v1/models", response_model=list[ModelInfo], summary="The model manifest")
    async def models(api: Annotated[ApiState, Depends(_state)]) -> list[ModelInfo]:
        return api.manifest.all()

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: Redis and Kafka reachable")
    async def readyz(api: Annotated[ApiState, Depends(_state)]) -> JSONResponse:
        try:
            redis_ok = bool(await asyncio.wait_for(api.redis.ping(), 2.0))
        except Exception:
            redis_ok = False
        kafka_ok = await api.topics.reachable()
        ok = redis_ok and kafka_ok
        return JSONResponse({"ready": ok, "redis": redis_ok, "kafka": kafka_ok}, 200 if ok else 503)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(api: Annotated[ApiState, Depends(_state)]) -> Response:
        return Response(generate_latest(api.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        bulk = LLMComparisonBulkRequest.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, sub in bulk.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components["LLMComparisonBulkRequest"] = bulk
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app


class _UnauthorisedError(Exception):
    """Raised by the auth dependency; rendered as 401 ErrorDetail."""


_bearer = HTTPBearer(auto_error=False)


def _state(request: Request) -> ApiState:
    api: ApiState = request.app.state.api
    return api


async def _authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When CJ_API_AUTH_TOKEN is set, require it as the bearer token (constant-time compare)."""
    token = _state(request).settings.auth_token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise _UnauthorisedError


def _operation(request: Request) -> str:
    return "submit_comparisons" if request.url.path.endswith("comparisons") else "submit_comparison"


def _item_correlation_id(item: Any) -> UUID:
    if isinstance(item, dict):
        try:
            return UUID(str(item.get("correlation_id")))
        except ValueError:
            pass
    return uuid4()


def _record_depth(api: ApiState, outcome: EnqueueOutcome) -> None:
    depth = outcome.depth_before + sum(1 for i in outcome.entry_ids if i is not None)
    api.metrics.queue_depth.labels("all").set(depth)


def main() -> None:
    """Console entry point `cj-provider-api`: uvicorn on CJ_API_HOST:CJ_API_PORT."""
    settings = ProviderApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
