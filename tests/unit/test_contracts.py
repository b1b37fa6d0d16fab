"""Validators and wire format of the common_core contracts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from common_core import (
    BULK_MAX_ITEMS,
    BatchStateEnum,
    BulkItemOutcome,
    CJAssessmentCompletedV1,
    ErrorDetail,
    EssayComparisonWinner,
    EssayRanking,
    EventEnvelope,
    LLMComparisonBulkRequest,
    LLMComparisonRequest,
    LLMComparisonResultV1,
    LLMErrorCode,
    LLMProviderType,
    LLMQueuedResponse,
    ProcessingEvent,
    QueuedRequest,
    QueuePriority,
    TokenUsage,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _common(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "q-1",
        "correlation_id": uuid4(),
        "provider": LLMProviderType.OFFLINE,
        "model": "offline-v1",
        "response_time_ms": 12,
        "token_usage": TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
        "cost_estimate": 0.0,
        "requested_at": NOW,
        "completed_at": NOW + timedelta(seconds=1),
    }
    fields.update(overrides)
    return fields


def _error(code: LLMErrorCode = LLMErrorCode.PARSING_ERROR) -> ErrorDetail:
    return ErrorDetail(error_code=code, message="no winner", service="workers", operation="judge")


def test_success_result_is_success_not_error() -> None:
    r = LLMComparisonResultV1(
        **_common(), winner=EssayComparisonWinner.ESSAY_B, justification="B", confidence=4.0
    )
    assert r.is_success and not r.is_error


def test_error_result_is_error_not_success() -> None:
    r = LLMComparisonResultV1(**_common(), error_detail=_error())
    assert r.is_error and not r.is_success


def test_both_success_and_error_rejected() -> None:
    with pytest.raises(ValidationError, match="not both"):
        LLMComparisonResultV1(
            **_common(),
            winner=EssayComparisonWinner.ESSAY_A,
            justification="A",
            confidence=3.0,
            error_detail=_error(),
        )


def test_neither_success_nor_error_rejected() -> None:
    with pytest.raises(ValidationError, match="either success fields or error_detail"):
        LLMComparisonResultV1(**_common())


@pytest.mark.parametrize(
    "partial",
    [
        {"winner": EssayComparisonWinner.ESSAY_A},
        {"winner": EssayComparisonWinner.ESSAY_A, "justification": "x"},
        {"winner": EssayComparisonWinner.ESSAY_A, "confidence": 3.0},
        {"justification": "x", "confidence": 3.0},
        {"confidence": 3.0},
    ],
)
def test_partial_success_rejected(partial: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="set together"):
        LLMComparisonResultV1(**_common(), **partial)


def test_partial_success_with_error_detail_rejected() -> None:
    with pytest.raises(ValidationError, match="not both"):
        LLMComparisonResultV1(**_common(), justification="x", error_detail=_error())


@pytest.mark.parametrize("confidence", [0.0, 0.99, 5.01, 6.0, -1.0])
def test_confidence_outside_one_to_five_rejected(confidence: float) -> None:
    with pytest.raises(ValidationError, match="confidence"):
        LLMComparisonResultV1(
            **_common(),
            winner=EssayComparisonWinner.ESSAY_A,
            justification="x",
            confidence=confidence,
        )


@pytest.mark.parametrize("confidence", [1.0, 2.5, 5.0])
def test_confidence_bounds_inclusive(confidence: float) -> None:
    r = LLMComparisonResultV1(
        **_common(), winner=EssayComparisonWinner.ESSAY_A, justification="x", confidence=confidence
    )
    assert r.confidence == confidence


def test_justification_limit_is_500_characters() -> None:
    ok = LLMComparisonResultV1(
        **_common(), winner=EssayComparisonWinner.ESSAY_A, justification="j" * 500, confidence=3
    )
    assert ok.justification is not None and len(ok.justification) == 500
    with pytest.raises(ValidationError, match="justification"):
        LLMComparisonResultV1(
            **_common(),
            winner=EssayComparisonWinner.ESSAY_A,
            justification="j" * 501,
            confidence=3,
        )


def test_naive_timestamps_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        LLMComparisonResultV1(**_common(requested_at=datetime(2026, 1, 1)), error_detail=_error())


def test_negative_token_counts_and_cost_rejected() -> None:
    with pytest.raises(ValidationError):
        TokenUsage(prompt_tokens=-1)
    with pytest.raises(ValidationError, match="cost_estimate"):
        LLMComparisonResultV1(**_common(cost_estimate=-0.01), error_detail=_error())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"response_time_ms": 2**31}, "response_time_ms"),
        ({"model": "m" * 201}, "model"),
        ({"model": "bad\x00model"}, "model"),
        ({"request_id": "q\x1b[31m"}, "request_id"),
        ({"cost_estimate": float("inf")}, "cost_estimate"),
        ({"cost_estimate": 1e9}, "cost_estimate"),
        ({"trace_id": "t" * 65}, "trace_id"),
    ],
)
def test_fields_the_database_could_not_store_are_rejected(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        LLMComparisonResultV1(**_common(**overrides), error_detail=_error())


def test_the_largest_storable_values_are_accepted() -> None:
    usage = TokenUsage(prompt_tokens=2**31 - 1, completion_tokens=0, total_tokens=2**31 - 1)
    r = LLMComparisonResultV1(
        **_common(response_time_ms=2**31 - 1, model="m" * 200, token_usage=usage),
        winner=EssayComparisonWinner.ESSAY_A,
        justification="Line one.\nLine two,\tindented.",
        confidence=3.0,
    )
    assert r.response_time_ms == 2**31 - 1
    with pytest.raises(ValidationError, match="prompt_tokens"):
        TokenUsage(prompt_tokens=2**31)


def test_a_nul_in_the_justification_is_rejected_with_its_position() -> None:
    with pytest.raises(ValidationError, match=r"control character '\\x00' at position 4"):
        LLMComparisonResultV1(
            **_common(),
            winner=EssayComparisonWinner.ESSAY_A,
            justification="fine\x00then not",
            confidence=3.0,
        )


def test_control_characters_in_an_error_message_are_removed() -> None:
    detail = ErrorDetail(
        error_code=LLMErrorCode.PROVIDER_API_ERROR,
        message="upstream said \x1b[31mno\x00 thanks\n",
        service="workers",
        operation="judge",
    )
    assert detail.message == "upstream said [31mno thanks\n"


def test_envelope_json_round_trip_into_typed_model() -> None:
    result = LLMComparisonResultV1(
        **_common(request_metadata={"batch_uid": "u-1", "pair_id": 7, "round": 2}),
        winner=EssayComparisonWinner.ESSAY_A,
        justification="clearer argument",
        confidence=4.5,
    )
    envelope = EventEnvelope[LLMComparisonResultV1](
        event_type=ProcessingEvent.LLM_COMPARISON_RESULT.value,
        source_service="cj-workers",
        correlation_id=result.correlation_id,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        metadata={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        data=result,
    )
    wire = envelope.model_dump_json().encode()
    parsed = EventEnvelope[LLMComparisonResultV1].model_validate_json(wire)
    assert parsed == envelope
    assert isinstance(parsed.data, LLMComparisonResultV1)
    assert parsed.data.winner is EssayComparisonWinner.ESSAY_A
    assert parsed.data.request_metadata == {"batch_uid": "u-1", "pair_id": 7, "round": 2}


def test_envelope_round_trip_of_error_event_keeps_error_code() -> None:
    result = LLMComparisonResultV1(**_common(), error_detail=_error(LLMErrorCode.PROVIDER_TIMEOUT))
    envelope = EventEnvelope[LLMComparisonResultV1](
        event_type=ProcessingEvent.LLM_COMPARISON_RESULT.value,
        source_service="cj-workers",
        correlation_id=result.correlation_id,
        data=result,
    )
    parsed = EventEnvelope[LLMComparisonResultV1].model_validate_json(envelope.model_dump_json())
    assert parsed.data.error_detail is not None
    assert parsed.data.error_detail.error_code is LLMErrorCode.PROVIDER_TIMEOUT


def test_envelope_rejects_payload_that_breaks_its_contract() -> None:
    raw = {
        "event_type": "llm_provider.comparison_result",
        "source_service": "x",
        "correlation_id": str(uuid4()),
        "data": {**_common(), "winner": "essay_c", "justification": "x", "confidence": 3},
    }
    with pytest.raises(ValidationError, match="winner"):
        EventEnvelope[LLMComparisonResultV1].model_validate(raw)


def test_error_codes_are_the_platforms_fourteen() -> None:
    assert {c.name for c in LLMErrorCode} == {
        "PROVIDER_UNAVAILABLE",
        "PROVIDER_RATE_LIMIT",
        "PROVIDER_TIMEOUT",
        "PROVIDER_API_ERROR",
        "INVALID_PROMPT",
        "CONTENT_TOO_LONG",
        "INVALID_CONFIG",
        "QUEUE_FULL",
        "INTERNAL_ERROR",
        "CALLBACK_TOPIC_MISSING",
        "INVALID_CALLBACK_TOPIC",
        "PARSING_ERROR",
        "INVALID_RESPONSE",
        "COST_LIMIT_EXCEEDED",
    }
    assert LLMErrorCode.PARSING_ERROR.value == "LLM_PARSING_ERROR"


def test_topic_names() -> None:
    assert (
        ProcessingEvent.LLM_COMPARISON_RESULT.topic_name()
        == "huleedu.llm_provider.comparison_result.v1"
    )
    assert (
        ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name() == "huleedu.cj_assessment.completed.v1"
    )


def test_batch_states_and_terminal_ones() -> None:
    assert [s.value for s in BatchStateEnum] == [
        "INITIALIZING",
        "GENERATING_PAIRS",
        "WAITING_CALLBACKS",
        "SCORING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]
    assert {s for s in BatchStateEnum if s.is_terminal} == {
        BatchStateEnum.COMPLETED,
        BatchStateEnum.FAILED,
        BatchStateEnum.CANCELLED,
    }


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_prompt": "Which essay argues better?",
        "essay_a": "A text",
        "essay_b": "B text",
        "callback_topic": "huleedu.llm_provider.comparison_result.v1",
    }
    body.update(overrides)
    return body


def test_request_requires_callback_topic() -> None:
    body = _request()
    del body["callback_topic"]
    with pytest.raises(ValidationError, match="callback_topic"):
        LLMComparisonRequest.model_validate(body)


@pytest.mark.parametrize("topic", ["", "has space", "a/b", "x" * 250])
def test_request_rejects_illegal_topic_names(topic: str) -> None:
    with pytest.raises(ValidationError, match="callback_topic"):
        LLMComparisonRequest.model_validate(_request(callback_topic=topic))


def test_request_rejects_unknown_fields_and_empty_essays() -> None:
    with pytest.raises(ValidationError, match="callback_url"):
        LLMComparisonRequest.model_validate(_request(callback_url="http://x"))
    with pytest.raises(ValidationError, match="essay_a"):
        LLMComparisonRequest.model_validate(_request(essay_a=""))


def test_queued_request_copies_callback_and_correlation() -> None:
    request = LLMComparisonRequest.model_validate(_request(metadata={"pair_id": 3}))
    queued = QueuedRequest.from_request(request, ttl_seconds=60)
    assert queued.callback_topic == request.callback_topic
    assert queued.correlation_id == request.correlation_id
    assert queued.expires_at - queued.queued_at == timedelta(seconds=60)
    again = QueuedRequest.model_validate_json(queued.model_dump_json())
    assert again == queued


def test_queued_response_has_no_polling_fields() -> None:
    fields = set(LLMQueuedResponse.model_fields)
    assert "status_url" not in fields and "retry_after" not in fields
    assert {"queue_id", "status", "queued_at", "estimated_wait_seconds"} <= fields


def test_bulk_outcome_is_queued_xor_error() -> None:
    queued = LLMQueuedResponse(
        queue_id=uuid4(),
        correlation_id=uuid4(),
        queued_at=NOW,
        estimated_wait_seconds=0.5,
        priority=QueuePriority.NORMAL,
    )
    BulkItemOutcome(index=0, correlation_id=queued.correlation_id, queued=queued)
    BulkItemOutcome(index=1, correlation_id=uuid4(), error=_error(LLMErrorCode.CONTENT_TOO_LONG))
    with pytest.raises(ValidationError, match="either queued or an error"):
        BulkItemOutcome(index=2, correlation_id=uuid4())
    with pytest.raises(ValidationError, match="either queued or an error"):
        BulkItemOutcome(index=3, correlation_id=uuid4(), queued=queued, error=_error())


def test_bulk_request_bounds() -> None:
    one = LLMComparisonRequest.model_validate(_request())
    with pytest.raises(ValidationError, match="at least 1"):
        LLMComparisonBulkRequest(requests=[])
    with pytest.raises(ValidationError, match="at most 1000"):
        LLMComparisonBulkRequest(requests=[one] * (BULK_MAX_ITEMS + 1))


def test_completion_event_round_trip() -> None:
    event = CJAssessmentCompletedV1(
        batch_id="uid-1",
        namespace="ns",
        name="essays-9",
        state=BatchStateEnum.COMPLETED,
        reason="ScoresStable",
        essays=2,
        submitted=3,
        completed=3,
        failed=0,
        rounds=1,
        reliability=0.81,
        provider="offline",
        model="offline-v1",
        cost_usd=0.0,
        total_tokens=0,
        started_at=NOW,
        finished_at=NOW + timedelta(minutes=2),
        rankings=[
            EssayRanking(
                essay_id="a", score=0.4, standard_error=0.3, rank=1, comparisons=3, wins=2
            ),
            EssayRanking(
                essay_id="b", score=-0.4, standard_error=0.3, rank=2, comparisons=3, wins=1
            ),
        ],
    )
    envelope = EventEnvelope[CJAssessmentCompletedV1](
        event_type=ProcessingEvent.CJ_ASSESSMENT_COMPLETED.value,
        source_service="cj-operator",
        correlation_id=uuid4(),
        data=event,
    )
    parsed = EventEnvelope[CJAssessmentCompletedV1].model_validate_json(envelope.model_dump_json())
    assert parsed.data == event
