"""Bad-input suite, property-based: schemathesis generates requests from the provider API's own
OpenAPI schema (valid and invalid bodies, paths and headers) against the real API process on
real Redis and Kafka.

Checked for every generated request: no 5xx; every 4xx carries a JSON error body with a
message (an ErrorDetail, or per-item ErrorDetails for the bulk route); and, once all ran, the
queue holds exactly the requests the API answered as queued (nothing lost, nothing extra) and
its `queued` counter says the same. Examples are bounded so the run stays well under 60 s.
"""

from __future__ import annotations

from typing import Any

import httpx
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from cj_workers.api.app import create_app
from cj_workers.settings import ProviderApiSettings
from tests.integration.bad_input.queue_view import queued
from tests.support.metrics import metric
from tests.support.stack import Stack

MAX_EXAMPLES = 25
"""Generated requests per operation and phase (the run takes about 20 s on the dev machine)."""

ACCEPTED: list[int] = []
"""Requests the API answered as queued, over every generated case of this module."""

STATUSES: list[int] = []
"""The status of every generated request."""


schema = schemathesis.openapi.from_dict(create_app(ProviderApiSettings()).openapi())
"""The schema the API serves at /openapi.json, built by the same code (no process needed to
collect the tests; the requests go to the running API)."""


def _error_messages(body: Any) -> list[str]:
    """The messages of an error body: an ErrorDetail, or a bulk answer's per-item errors."""
    if isinstance(body, dict) and "outcomes" in body:
        return [str((o.get("error") or {}).get("message") or "") for o in body["outcomes"]]
    if isinstance(body, dict):
        return [str(body.get("message") or "")]
    return [""]


def _queued_count(body: Any) -> int:
    if isinstance(body, dict) and "outcomes" in body:
        return sum(1 for o in body["outcomes"] if o.get("queued"))
    return 1 if isinstance(body, dict) and body.get("status") == "queued" else 0


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_5xx_and_every_4xx_says_why(
    case: Case[Any], api_stack: Stack
) -> None:
    response = case.call(base_url=api_stack.api_url, timeout=10)
    STATUSES.append(response.status_code)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code < 500, where
    if 400 <= response.status_code < 500:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), where
        messages = _error_messages(response.json())
        assert messages and all(m.strip() for m in messages), where
    if response.status_code in (202, 207):
        ACCEPTED.append(_queued_count(response.json()))


async def test_the_queue_holds_exactly_what_was_answered_as_queued(
    api_stack: Stack, redis_client: aioredis.Redis
) -> None:
    by_status = {code: STATUSES.count(code) for code in sorted(set(STATUSES))}
    print(f"schemathesis: {len(STATUSES)} requests, by status {by_status}")
    assert len(STATUSES) >= 100, by_status  # the generation ran, over every operation
    assert any(400 <= code < 500 for code in STATUSES), by_status
    assert await queued(api_stack, redis_client) == sum(ACCEPTED)
    counted = metric(api_stack.api_url, "cj_provider_api_submissions_total", outcome="queued")
    assert counted == sum(ACCEPTED)
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=10) as client:
        assert (await client.get("/readyz")).status_code == 200
