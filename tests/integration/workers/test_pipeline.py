"""API -> Redis stream -> worker -> Kafka on the real services: success and each error path."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from cj_workers.providers.offline import offline_verdict
from common_core import BatchCancelResponse, LLMErrorCode, LLMQueuedResponse, ProcessingEvent
from common_core.metadata_keys import ESSAY_A_METADATA, ESSAY_B_METADATA, TRUE_SCORE
from tests.integration.workers.comparisons import collect, request
from tests.support.metrics import metric
from tests.support.stack import Stack

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def mock(directives: str) -> dict[str, object]:
    return {"provider_override": "mock", "model_override": f"mock?{directives}"}


async def test_requests_flow_to_kafka_with_success_and_error_events(stack: Stack) -> None:
    api = stack.start_api(CJ_API_AUTH_TOKEN=TOKEN, CJ_API_MAX_ESSAY_CHARS="2000").url
    worker = stack.start_worker(
        "w1",
        CJ_WORKER_MAX_ATTEMPTS="2",
        CJ_WORKER_RETRY_BASE_SECONDS="0.01",
        CJ_WORKER_PROVIDER_TIMEOUT_SECONDS="1",
    ).url
    topic = stack.config.callback_topic
    sim_meta = {ESSAY_A_METADATA: {TRUE_SCORE: 3.0}, ESSAY_B_METADATA: {TRUE_SCORE: -3.0}}
    cases: dict[str, dict[str, object]] = {
        "offline": {"llm_config_overrides": {"provider_override": "offline"}},
        "simulated": {
            "llm_config_overrides": {"provider_override": "simulated"},
            "metadata": {"case": "simulated", **sim_meta},
        },
        "simulated-no-score": {"llm_config_overrides": {"provider_override": "simulated"}},
        "malformed": {"llm_config_overrides": mock("answer=malformed")},
        "bad-confidence": {"llm_config_overrides": mock("answer=bad_confidence")},
        "refusal": {"llm_config_overrides": mock("answer=refusal")},
        "rate-limited": {"llm_config_overrides": mock("fail=rate_limit&retry_after=0.05")},
        "recovers": {"llm_config_overrides": mock("fail=server_error&fail_times=1")},
        "timeout": {"llm_config_overrides": mock("fail=timeout")},
        "no-key": {
            "llm_config_overrides": {
                "provider_override": "anthropic",
                "model_override": "claude-haiku-4-5",
            }
        },
        "high": {"priority": "high", "llm_config_overrides": {"provider_override": "offline"}},
    }
    bodies = {name: request(topic, name, **extra) for name, extra in cases.items()}
    async with httpx.AsyncClient(base_url=api, headers=AUTH, timeout=10) as client:
        first = await client.post("/api/v1/comparison", json=bodies.pop("offline"))
        assert first.status_code == 202, first.text
        queued = LLMQueuedResponse.model_validate(first.json())
        bulk = await client.post("/api/v1/comparisons", json={"requests": list(bodies.values())})
        assert bulk.status_code == 202, bulk.text
        assert all(o["queued"] for o in bulk.json()["outcomes"])

    events = await collect(stack, len(cases))
    by_case = {e.data.request_metadata["case"]: (key, e) for key, e in events}
    assert set(by_case) == set(cases)

    key, offline = by_case["offline"]
    assert key == str(offline.correlation_id).encode()
    assert offline.correlation_id == queued.correlation_id
    assert offline.data.request_id == str(queued.queue_id)
    assert offline.event_type == ProcessingEvent.LLM_COMPARISON_RESULT.value
    expected = offline_verdict(cases_essay("a"), cases_essay("b"))
    assert offline.data.winner is expected.winner
    assert offline.data.confidence == expected.confidence
    assert offline.data.justification is not None and len(offline.data.justification) <= 50
    assert offline.metadata["batch_id"] == "batch-default"

    assert by_case["simulated"][1].data.is_success
    assert by_case["recovers"][1].data.is_success
    assert by_case["high"][1].data.is_success
    expected_errors = {
        "simulated-no-score": LLMErrorCode.INVALID_CONFIG,
        "malformed": LLMErrorCode.PARSING_ERROR,
        "bad-confidence": LLMErrorCode.INVALID_RESPONSE,
        "refusal": LLMErrorCode.INVALID_RESPONSE,
        "rate-limited": LLMErrorCode.PROVIDER_RATE_LIMIT,
        "timeout": LLMErrorCode.PROVIDER_TIMEOUT,
        "no-key": LLMErrorCode.INVALID_CONFIG,
    }
    for case, code in expected_errors.items():
        data = by_case[case][1].data
        assert data.error_detail is not None, case
        assert data.error_detail.error_code is code, (case, data.error_detail)
        assert data.winner is None and data.confidence is None
    assert by_case["rate-limited"][1].data.error_detail.retryable  # type: ignore[union-attr]
    assert by_case["rate-limited"][1].data.error_detail.details["attempts"] == 2  # type: ignore[union-attr]

    assert metric(worker, "cj_provider_callback_events_published_total", status="error") == 7
    assert metric(worker, "cj_provider_callback_events_published_total", status="success") == 4
    assert metric(worker, "cj_provider_requests_total", provider="mock", status="success") == 1
    assert (
        metric(worker, "cj_provider_retries_total", provider="mock", code="LLM_PROVIDER_RATE_LIMIT")
        == 1
    )


def cases_essay(which: str) -> str:
    return str(request("t", "x")[f"essay_{which}"])


async def test_api_refuses_bad_requests_with_error_details(stack: Stack) -> None:
    api = stack.start_api(CJ_API_AUTH_TOKEN=TOKEN, CJ_API_MAX_ESSAY_CHARS="2000").url
    topic = stack.config.callback_topic
    async with httpx.AsyncClient(base_url=api, headers=AUTH, timeout=10) as client:

        async def refused(body: object, status: int, code: LLMErrorCode) -> dict[str, object]:
            response = await client.post("/api/v1/comparison", json=body)
            assert response.status_code == status, response.text
            assert response.json()["error_code"] == code.value, response.text
            return dict(response.json())

        body = request(topic, "x")
        del body["callback_topic"]
        await refused(body, 400, LLMErrorCode.CALLBACK_TOPIC_MISSING)
        await refused(request("   ", "x"), 400, LLMErrorCode.CALLBACK_TOPIC_MISSING)
        detail = await refused(
            request("huleedu.elsewhere", "x"), 400, LLMErrorCode.INVALID_CALLBACK_TOPIC
        )
        assert "huleedu.elsewhere" in str(detail["message"])
        missing = f"test.{uuid.uuid4().hex}.absent"
        detail = await refused(request(missing, "x"), 400, LLMErrorCode.INVALID_CALLBACK_TOPIC)
        assert "does not exist" in str(detail["message"])
        detail = await refused(
            request(topic, "x", essay_b="y" * 2001), 413, LLMErrorCode.CONTENT_TOO_LONG
        )
        assert detail["details"] == {"field": "essay_b", "length": 2001, "limit": 2000}
        await refused(request(topic, "x", essay_a=""), 400, LLMErrorCode.INVALID_PROMPT)
        bad_model = request(
            topic,
            "x",
            llm_config_overrides={"provider_override": "openai", "model_override": "gpt-typo"},
        )
        await refused(bad_model, 400, LLMErrorCode.INVALID_CONFIG)
        await refused(
            request(topic, "x", llm_config_overrides={"temperature_override": 9}),
            400,
            LLMErrorCode.INVALID_CONFIG,
        )

        bulk = await client.post(
            "/api/v1/comparisons",
            json={"requests": [request(topic, "ok"), request("nope!", "bad"), {"essay_a": 1}]},
        )
        assert bulk.status_code == 207, bulk.text
        outcomes = bulk.json()["outcomes"]
        assert outcomes[0]["queued"]["status"] == "queued"
        assert outcomes[1]["error"]["error_code"] == LLMErrorCode.INVALID_CALLBACK_TOPIC.value
        assert outcomes[2]["error"]["error_code"] == LLMErrorCode.CALLBACK_TOPIC_MISSING.value
        all_bad = await client.post("/api/v1/comparisons", json={"requests": [request("x y", "a")]})
        assert all_bad.status_code == 400
        empty = await client.post("/api/v1/comparisons", json={"requests": []})
        assert empty.status_code == 400

    async with httpx.AsyncClient(base_url=api, timeout=10) as anon:
        no_auth = await anon.post("/api/v1/comparison", json=request(topic, "x"))
        wrong = await anon.post(
            "/api/v1/comparison", json=request(topic, "x"), headers={"Authorization": "Bearer x"}
        )
        models = (await anon.get("/api/v1/models")).json()
        spec = (await anon.get("/openapi.json")).json()
        ready = (await anon.get("/readyz")).json()
    assert no_auth.status_code == 401
    assert no_auth.json()["operation"] == "authenticate"
    assert wrong.status_code == 401

    haiku = next(m for m in models if m["model"] == "claude-haiku-4-5")
    assert (haiku["input_usd_per_mtok"], haiku["output_usd_per_mtok"]) == (1.0, 5.0)
    for path in ("/api/v1/comparison", "/api/v1/comparisons", "/api/v1/batches/{batch_id}/cancel"):
        assert path in spec["paths"]
    assert "LLMComparisonBulkRequest" in spec["components"]["schemas"]
    assert ready == {"ready": True, "redis": True, "kafka": True}
    assert metric(api, "cj_provider_api_submissions_total", outcome="queued") == 1


async def test_queue_full_priority_and_expiry(stack: Stack) -> None:
    api = stack.start_api(
        CJ_API_QUEUE_HIGH_WATER="3", CJ_API_QUEUE_LOW_WATER="1", CJ_API_REQUEST_TTL_SECONDS="1"
    ).url
    offline = {"provider_override": "offline"}
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        for case, priority in [("n1", "normal"), ("n2", "normal"), ("h1", "high")]:
            r = await client.post(
                "/api/v1/comparison",
                json=request(
                    stack.config.callback_topic,
                    case,
                    priority=priority,
                    llm_config_overrides=offline,
                ),
            )
            assert r.status_code == 202, r.text
        full = await client.post(
            "/api/v1/comparison", json=request(stack.config.callback_topic, "n3")
        )
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "30"
        assert full.json()["error_code"] == LLMErrorCode.QUEUE_FULL.value
        assert full.json()["retryable"] is True

        # Requests older than their TTL (1 s) when a worker takes them yield error events.
        await asyncio.sleep(1.5)
        stack.start_worker("w1", CJ_WORKER_CONCURRENCY="1")
        events = await collect(stack, 3)
        # One at a time (concurrency 1), high priority first; partitions do not keep a global
        # order, so order by completion time.
        events.sort(key=lambda ke: ke[1].data.completed_at)
        assert events[0][1].data.request_metadata["case"] == "h1"
        for _, event in events:
            assert event.data.error_detail is not None
            assert event.data.error_detail.error_code is LLMErrorCode.PROVIDER_TIMEOUT
            assert event.data.error_detail.details["expired"] is True

        # Drained below the low-water mark: accepted again.
        again = await client.post(
            "/api/v1/comparison",
            json=request(stack.config.callback_topic, "n4", llm_config_overrides=offline),
        )
        assert again.status_code == 202, again.text


async def test_a_cancelled_batch_is_skipped(stack: Stack, redis: object) -> None:
    api = stack.start_api().url
    offline = {"provider_override": "offline"}
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        for case, batch in [("x1", "batch-x"), ("y1", "batch-y"), ("x2", "batch-x")]:
            body = request(stack.config.callback_topic, case, llm_config_overrides=offline)
            body["metadata"] = {"case": case, "batch_id": batch}
            posted = await client.post("/api/v1/comparison", json=body)
            assert posted.status_code == 202
        cancel = await client.post("/api/v1/batches/batch-x/cancel")
        assert cancel.status_code == 200, cancel.text
        assert BatchCancelResponse.model_validate(cancel.json()).batch_id == "batch-x"
    worker = stack.start_worker("w1").url
    events = await collect(stack, 1, settle=2.0)
    assert [e.data.request_metadata["case"] for _, e in events] == ["y1"]
    assert metric(worker, "cj_provider_skipped_total") == 2
    queue = stack.queue(redis)  # type: ignore[arg-type]
    assert sum((await queue.depth()).values()) == 0
    assert await queue.pending_count() == 0
