"""The provider API's routes: submit one or many comparisons, cancel a batch, the model
manifest, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cj_plumbing.test_hooks import Point, hold_if_armed
from cj_workers.api.auth import authorise
from cj_workers.api.state import ApiState, api_state, error_response
from cj_workers.api.validation import HTTP_STATUS, check_request, error, parse_request
from cj_workers.manifest import ModelInfo
from cj_workers.queue import EnqueueOutcome
from cj_workers.settings import ProviderApiSettings
from common_core import (
    BULK_MAX_ITEMS,
    BatchCancelResponse,
    BulkItemOutcome,
    ErrorDetail,
    LLMComparisonBulkResponse,
    LLMComparisonRequest,
    LLMErrorCode,
    LLMQueuedResponse,
    QueuedRequest,
)

log = structlog.get_logger("cj_workers.api.app")  # one logger name for the whole API

ASSUMED_DRAIN_PER_SECOND = 1.0
"""Drain rate assumed for the wait estimate before any worker has finished a request."""

router = APIRouter()

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "invalid request (see error_code)"},
    401: {"model": ErrorDetail, "description": "missing or wrong bearer token"},
    413: {"model": ErrorDetail, "description": "CONTENT_TOO_LONG"},
    503: {"model": ErrorDetail, "description": "QUEUE_FULL (with Retry-After)"},
}


async def _admit(api: ApiState, req: LLMComparisonRequest, operation: str) -> ErrorDetail | None:
    settings = api.settings
    problem = check_request(
        req,
        topic_policy=api.topic_policy,
        max_essay_chars=settings.max_essay_chars,
        max_prompt_chars=settings.max_prompt_chars,
        max_metadata_bytes=settings.max_metadata_bytes,
        manifest=api.manifest,
        default_provider=None,
        enabled_providers=settings.enabled_providers,
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


def _queue_full(settings: ProviderApiSettings, operation: str, cid: Any) -> ErrorDetail:
    return error(
        LLMErrorCode.QUEUE_FULL,
        f"the request queue is full; retry after {settings.queue_full_retry_after_seconds} s",
        operation,
        cid,
        retry_after_seconds=settings.queue_full_retry_after_seconds,
    )


def _retry_after(settings: ProviderApiSettings) -> dict[str, str]:
    return {"Retry-After": str(settings.queue_full_retry_after_seconds)}


@router.post(
    "/api/v1/comparison",
    status_code=202,
    response_model=LLMQueuedResponse,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(authorise)],
    summary="Queue one comparison; its result arrives on callback_topic",
)
async def submit(
    body: LLMComparisonRequest, api: Annotated[ApiState, Depends(api_state)]
) -> Response:
    settings = api.settings
    operation = "submit_comparison"
    problem = await _admit(api, body, operation)
    if problem:
        api.metrics.submissions.labels(problem.error_code.value).inc()
        return error_response(problem)
    queued = QueuedRequest.from_request(body, settings.request_ttl_seconds)
    outcome = await api.queue.enqueue([queued], settings.queue_high_water, settings.queue_low_water)
    _record_depth(api, outcome)
    if outcome.entry_ids[0] is None:
        api.metrics.submissions.labels(LLMErrorCode.QUEUE_FULL.value).inc()
        return error_response(
            _queue_full(settings, operation, body.correlation_id), _retry_after(settings)
        )
    api.metrics.submissions.labels("queued").inc()
    answer = _queued(queued, outcome, outcome.depth_before)
    return JSONResponse(answer.model_dump(mode="json"), status_code=202)


@router.post(
    "/api/v1/comparisons",
    response_model=LLMComparisonBulkResponse,
    status_code=202,
    responses={
        207: {"model": LLMComparisonBulkResponse, "description": "some items refused"},
        **ERROR_RESPONSES,
    },
    dependencies=[Depends(authorise)],
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
async def submit_bulk(request: Request, api: Annotated[ApiState, Depends(api_state)]) -> Response:
    settings = api.settings
    operation = "submit_comparisons"
    try:
        raw = json.loads(await request.body())
    except ValueError as exc:
        return error_response(
            error(LLMErrorCode.INVALID_PROMPT, f"body is not valid JSON: {exc}", operation)
        )
    except RecursionError:
        return error_response(
            error(LLMErrorCode.INVALID_PROMPT, "body is JSON nested too deeply to read", operation)
        )
    items = raw.get("requests") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= BULK_MAX_ITEMS:
        return error_response(
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
        await hold_if_armed(
            Point.API_BEFORE_REPLY,
            queued=sum(i is not None for i in outcome.entry_ids),
            correlation_ids=[str(q.correlation_id) for q in to_queue],
        )
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
            full = _queue_full(settings, operation, queued.correlation_id)
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
        _retry_after(settings)
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


@router.post(
    "/api/v1/batches/{batch_id}/cancel",
    response_model=BatchCancelResponse,
    responses={401: ERROR_RESPONSES[401]},
    dependencies=[Depends(authorise)],
    summary="Cancel every queued request whose metadata batch_id matches",
)
async def cancel_batch(
    batch_id: str, api: Annotated[ApiState, Depends(api_state)]
) -> BatchCancelResponse:
    settings = api.settings
    await api.queue.cancel_batch(batch_id, settings.cancel_ttl_seconds)
    api.metrics.cancellations.inc()
    log.info("batch cancelled", batch_id=batch_id)
    return BatchCancelResponse(
        batch_id=batch_id,
        cancelled_at=datetime.now(UTC),
        ttl_seconds=settings.cancel_ttl_seconds,
    )


@router.get(
    "/api/v1/models",
    response_model=list[ModelInfo],
    summary="The model manifest of the enabled judges (CJ_ENABLED_PROVIDERS), with prices",
)
async def models(api: Annotated[ApiState, Depends(api_state)]) -> list[ModelInfo]:
    return api.manifest.offered(api.settings.enabled_providers)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: Redis and Kafka reachable")
async def readyz(api: Annotated[ApiState, Depends(api_state)]) -> JSONResponse:
    try:
        redis_ok = bool(await asyncio.wait_for(api.redis.ping(), 2.0))
    except Exception:
        redis_ok = False
    kafka_ok = await api.topics.reachable()
    ok = redis_ok and kafka_ok
    return JSONResponse({"ready": ok, "redis": redis_ok, "kafka": kafka_ok}, 200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(api: Annotated[ApiState, Depends(api_state)]) -> Response:
    return Response(generate_latest(api.registry), media_type=CONTENT_TYPE_LATEST)


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
