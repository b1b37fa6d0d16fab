"""The provider API: validate comparison requests, enqueue them, answer 202.

Routes (`cj_workers.api.routes`): POST /api/v1/comparison, POST /api/v1/comparisons (bulk),
POST /api/v1/batches/{batch_id}/cancel, GET /api/v1/models, /healthz, /readyz, /metrics, and
the OpenAPI docs (/docs, /openapi.json). Errors are ErrorDetail JSON. No status or result
polling: results travel only as Kafka events. This module builds the application (lifespan,
error handlers, OpenAPI schema) and holds the `cj-provider-api` entry point.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cj_plumbing.logs import configure_logging
from cj_workers.api.auth import UnauthorisedError, unauthorised
from cj_workers.api.body_limit import BodySizeLimit
from cj_workers.api.routes import router
from cj_workers.api.state import ApiState, error_response
from cj_workers.api.validation import error, from_validation_errors
from cj_workers.bootstrap_topics import bootstrap_at_start
from cj_workers.queue import connect_redis
from cj_workers.redis_check import EvictingRedisError, require_noeviction
from cj_workers.settings import ProviderApiSettings
from common_core import LLMComparisonBulkRequest, LLMErrorCode


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
    app.add_exception_handler(UnauthorisedError, unauthorised)

    def _count_too_large() -> None:
        api: ApiState | None = getattr(app.state, "api", None)
        if api is not None:
            api.metrics.submissions.labels(LLMErrorCode.CONTENT_TOO_LONG.value).inc()

    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        on_refusal=_count_too_large,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        detail = from_validation_errors(exc.errors(), body, _operation(request))
        request.app.state.api.metrics.submissions.labels(detail.error_code.value).inc()
        return error_response(detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot parse, an unknown route or method) get an
        # ErrorDetail body like every other error, not {"detail": ...}.
        what = "the request body is not valid JSON" if exc.status_code == 400 else "refused"
        detail = error(
            LLMErrorCode.INVALID_PROMPT if exc.status_code < 500 else LLMErrorCode.INTERNAL_ERROR,
            f"{request.method} {request.url.path}: {what} ({exc.detail})",
            _operation(request),
            status=exc.status_code,
        )
        if exc.status_code == 400:
            request.app.state.api.metrics.submissions.labels(detail.error_code.value).inc()
        return JSONResponse(
            detail.model_dump(mode="json"),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.include_router(router)

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


def _operation(request: Request) -> str:
    return "submit_comparisons" if request.url.path.endswith("comparisons") else "submit_comparison"


async def _check_redis(settings: ProviderApiSettings) -> None:
    """`require_noeviction` on a short-lived client, before uvicorn starts (so a refusal is
    one line, not a lifespan traceback)."""
    redis = connect_redis(settings.redis_url, 2)
    try:
        await require_noeviction(redis)
    finally:
        await redis.aclose()


def main() -> None:
    """Console entry point `cj-provider-api`: uvicorn on CJ_API_HOST:CJ_API_PORT."""
    settings = ProviderApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.redis_require_noeviction:
        try:
            asyncio.run(_check_redis(settings))
        except EvictingRedisError as exc:
            sys.exit(f"cj-provider-api: refusing to start: {exc}")
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
