"""Callback accounting rules: idempotency, retries, stale and unknown callbacks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from cj_operator.accounting import (
    NON_RETRYABLE,
    OVERDUE_ERROR_CODE,
    OpenPair,
    Outcome,
    plan_poll,
    retry_delay,
    should_retry,
)
from cj_workers.results import poison_result
from cj_workers.worker.poison import poison_target
from common_core import EssayComparisonWinner, LLMComparisonResultV1, LLMErrorCode, LLMProviderType
from tests.support.factories import NOW, failure, success


def _pair(
    pair_id: int,
    batch: str = "b1",
    *,
    open_: bool = True,
    overdue: bool = False,
    attempt: int = 1,
    max_retries: int = 3,
    finished: bool = False,
) -> OpenPair:
    return OpenPair(
        pair_id,
        batch,
        open_,
        overdue,
        attempt,
        max_retries,
        finished,
        essay_a_id=f"e{pair_id}",
        essay_b_id=f"e{pair_id + 1}",
    )


def _verdict(
    cid: UUID,
    pair: OpenPair,
    winner: EssayComparisonWinner = EssayComparisonWinner.ESSAY_A,
    **kw: Any,
) -> LLMComparisonResultV1:
    """A success result for `pair` echoing the request metadata a worker echoes."""
    return success(cid, winner, **kw, **pair.identity())


@pytest.mark.parametrize(
    ("code", "attempt", "max_retries", "retry"),
    [
        (LLMErrorCode.PROVIDER_TIMEOUT.value, 1, 3, True),
        (LLMErrorCode.PROVIDER_TIMEOUT.value, 3, 3, True),
        (LLMErrorCode.PROVIDER_TIMEOUT.value, 4, 3, False),
        (LLMErrorCode.PARSING_ERROR.value, 1, 0, False),
        (LLMErrorCode.PARSING_ERROR.value, 1, 1, True),
        (LLMErrorCode.CONTENT_TOO_LONG.value, 1, 3, False),
        (OVERDUE_ERROR_CODE, 2, 3, True),
        (None, 1, 3, True),
    ],
)
def test_retry_decisions(code: str | None, attempt: int, max_retries: int, retry: bool) -> None:
    assert should_retry(code, attempt, max_retries) is retry


def test_every_non_retryable_code_is_a_real_error_code() -> None:
    assert {str(c) for c in NON_RETRYABLE} <= {c.value for c in LLMErrorCode}


def test_success_and_failure_are_recorded_and_counted_per_batch() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    pairs = {a: _pair(1), b: _pair(2), c: _pair(3, "b2")}
    plan = plan_poll(
        [
            _verdict(a, pairs[a], cost=0.5, tokens=(10, 5)),
            failure(b, cost=0.25),
            _verdict(c, pairs[c], EssayComparisonWinner.ESSAY_B),
        ],
        pairs,
    )
    assert [(u.pair_id, u.success, u.needs_retry) for u in plan.updates] == [
        (1, True, False),
        (2, False, True),
        (3, True, False),
    ]
    b1 = plan.deltas["b1"]
    assert (b1.completed, b1.failed) == (1, 1)
    assert b1.cost_usd == pytest.approx(0.75)
    assert (b1.prompt_tokens, b1.completion_tokens, b1.total_tokens) == (10, 5, 15)
    assert plan.deltas["b2"].completed == 1
    assert plan.touched_batches == {"b1", "b2"}
    assert plan.outcomes == {Outcome.SUCCESS: 2, Outcome.FAILURE: 1}


def test_a_callback_counts_once_even_twice_in_one_poll() -> None:
    a = uuid4()
    plan = plan_poll([_verdict(a, _pair(1)), _verdict(a, _pair(1)), failure(a)], {a: _pair(1)})
    assert len(plan.updates) == 1
    assert plan.deltas["b1"].completed == 1
    assert plan.deltas["b1"].failed == 0
    assert plan.outcomes[Outcome.DUPLICATE] == 2


def test_answered_pairs_give_duplicates_and_closed_ones_stale() -> None:
    answered, overdue, finished = uuid4(), uuid4(), uuid4()
    pairs = {
        answered: _pair(1, open_=False),
        overdue: _pair(2, open_=False, overdue=True),
        finished: _pair(3, finished=True),
    }
    plan = plan_poll([_verdict(cid, pair) for cid, pair in pairs.items()], pairs)
    assert plan.updates == []
    assert plan.deltas == {}
    assert plan.outcomes == {Outcome.DUPLICATE: 1, Outcome.STALE: 2}


def _later(result: LLMComparisonResultV1, seconds: float, cost: float) -> LLMComparisonResultV1:
    """Another judge call for the same request: its own completed_at and cost."""
    return result.model_copy(
        update={"completed_at": NOW + timedelta(seconds=seconds), "cost_estimate": cost}
    )


def test_late_answers_are_judge_calls_whose_cost_counts_once_per_call() -> None:
    answered, overdue, finished, unknown = uuid4(), uuid4(), uuid4(), uuid4()
    pairs = {
        answered: OpenPair(1, "b1", False, False, 1, 3, False, answer_completed_at=NOW),
        overdue: _pair(2, "b2", open_=False, overdue=True),
        finished: _pair(3, "b3", finished=True),
    }

    def verdict(cid: UUID) -> LLMComparisonResultV1:
        return success(cid, **pairs[cid].identity())

    second_call = _later(verdict(answered), 5, 0.25)
    plan = plan_poll(
        [
            verdict(answered),  # the recorded answer delivered again: no new call
            second_call,
            second_call,  # the second call delivered twice in one poll
            _later(verdict(overdue), 1, 0.5),
            _later(verdict(finished), 1, 0.125),
            success(unknown, cost=9.0),
        ],
        pairs,
    )
    assert plan.outcomes == {Outcome.DUPLICATE: 3, Outcome.STALE: 2, Outcome.UNKNOWN: 1}
    assert plan.updates == [] and plan.deltas == {}
    assert [(c.pair_id, c.outcome, c.result.cost_estimate) for c in plan.late] == [
        (1, Outcome.DUPLICATE, 0.25),
        (2, Outcome.STALE, 0.5),
        (3, Outcome.STALE, 0.125),
    ]
    assert plan.touched_batches == {"b1", "b2", "b3"}


def test_a_second_answer_in_the_same_poll_as_the_first_is_a_late_call() -> None:
    cid = uuid4()
    pair = _pair(1)
    first = success(cid, cost=0.5, **pair.identity())
    plan = plan_poll([first, first, _later(first, 2, 0.5)], {cid: pair})
    assert plan.outcomes == {Outcome.SUCCESS: 1, Outcome.DUPLICATE: 2}
    assert [c.result.completed_at for c in plan.late] == [NOW + timedelta(seconds=2)]


def test_unknown_correlation_ids_are_counted_not_recorded() -> None:
    plan = plan_poll([success(uuid4()), failure(uuid4())], {})
    assert plan.updates == []
    assert plan.outcomes == {Outcome.UNKNOWN: 2}


def test_results_naming_another_pair_are_forged_and_not_recorded() -> None:
    cid, other = uuid4(), uuid4()
    pair = OpenPair(7, "b1", True, False, 1, 3, False, essay_a_id="e1", essay_b_id="e2")
    pairs = {cid: pair, other: pair}
    honest = success(cid, batch_id="b1", pair_id=7, essay_a_id="e1", essay_b_id="e2")
    forged = success(other, batch_id="b1", pair_id=7, essay_a_id="e1", essay_b_id="e9")
    plan = plan_poll([forged, honest], pairs)
    assert plan.outcomes == {Outcome.FORGED: 1, Outcome.SUCCESS: 1}
    assert [u.result.correlation_id for u in plan.updates] == [cid]
    assert [(r.correlation_id, "essay_b_id is 'e9'" in why) for r, why in plan.forged] == [
        (other, True)
    ]
    # Another batch's id in the metadata is forged too.
    elsewhere = _verdict(cid, pair).model_copy(
        update={"request_metadata": {**pair.identity(), "batch_id": "b2"}}
    )
    assert plan_poll([elsewhere], {cid: pair}).outcomes == {Outcome.FORGED: 1}
    assert plan_poll([_verdict(cid, pair)], {cid: pair}).outcomes == {Outcome.SUCCESS: 1}


@pytest.mark.parametrize("key", ["batch_id", "pair_id", "essay_a_id", "essay_b_id"])
def test_a_verdict_that_omits_or_nulls_an_identity_key_is_forged(key: str) -> None:
    cid = uuid4()
    pair = _pair(7)
    echoed: dict[str, Any] = {**pair.identity(), "round": 1, "attempt": 1}
    omitted = success(cid, **{k: v for k, v in echoed.items() if k != key})
    nulled = success(cid, **{**echoed, key: None})
    for forged, why in ((omitted, f"a verdict without request_metadata.{key}"), (nulled, "None")):
        plan = plan_poll([forged], {cid: pair})
        assert plan.outcomes == {Outcome.FORGED: 1}
        assert plan.updates == [] and plan.deltas == {}
        assert why in plan.forged[0][1] and key in plan.forged[0][1]


def test_a_verdict_without_any_metadata_is_forged_and_the_honest_answer_still_counts() -> None:
    cid = uuid4()
    pair = _pair(7)
    plan = plan_poll([success(cid), _verdict(cid, pair)], {cid: pair})
    assert plan.outcomes == {Outcome.FORGED: 1, Outcome.SUCCESS: 1}
    assert plan.forged[0][1].startswith("forged: a verdict without request_metadata.batch_id")
    assert len(plan.updates) == 1 and plan.deltas["b1"].completed == 1


@pytest.mark.parametrize(
    "echoed",
    [{}, {"batch_id": "b1"}, {"pair_id": 7, "essay_b_id": "e8"}, {"unrelated": "x"}],
)
def test_an_error_event_may_echo_part_of_the_metadata(echoed: dict[str, object]) -> None:
    cid = uuid4()
    error = failure(cid).model_copy(update={"request_metadata": echoed})
    plan = plan_poll([error], {cid: _pair(7)})
    assert plan.outcomes == {Outcome.FAILURE: 1}
    assert plan.deltas["b1"].failed == 1


@pytest.mark.parametrize("echoed", [{"batch_id": "b2"}, {"pair_id": 8}, {"essay_a_id": None}])
def test_an_error_event_naming_another_pair_is_still_forged(echoed: dict[str, object]) -> None:
    cid = uuid4()
    error = failure(cid).model_copy(update={"request_metadata": echoed})
    assert plan_poll([error], {cid: _pair(7)}).outcomes == {Outcome.FORGED: 1}


def test_the_workers_give_up_event_with_unreadable_metadata_is_recorded() -> None:
    """A stream entry the workers gave up on, whose metadata is not a JSON object: its
    INTERNAL_ERROR event echoes no metadata and must still close the pair as failed."""
    cid = uuid4()
    payload = json.dumps(
        {
            "correlation_id": str(cid),
            "callback_topic": "huleedu.llm_provider.comparison_result.v1",
            "request_data": {"metadata": "not an object"},
        }
    ).encode()
    target = poison_target(payload, LLMProviderType.MOCK, {})
    assert target is not None
    event = poison_result(**target[1], deliveries=6, limit=5, service="w")
    assert event.request_metadata == {}
    plan = plan_poll([event], {cid: _pair(7)})
    assert plan.outcomes == {Outcome.FAILURE: 1}
    assert [u.pair_id for u in plan.updates] == [7] and plan.deltas["b1"].failed == 1


def test_retry_delay_doubles_per_attempt_and_honours_retry_after() -> None:
    assert [retry_delay(None, attempt, 2.0) for attempt in (1, 2, 3, 9, 30)] == [
        2.0,
        4.0,
        8.0,
        300.0,
        300.0,
    ]
    assert retry_delay(None, 3, 0.0) == 0.0
    limited = failure(uuid4(), LLMErrorCode.PROVIDER_RATE_LIMIT)
    assert limited.error_detail is not None

    def saying(seconds: object) -> LLMComparisonResultV1:
        assert limited.error_detail is not None
        detail = limited.error_detail.model_copy(
            update={"details": {"retry_after_seconds": seconds}}
        )
        return limited.model_copy(update={"error_detail": detail})

    assert retry_delay(saying(42), 1, 2.0) == 42.0
    assert retry_delay(saying(0), 1, 2.0) == 1.0  # clamped up
    assert retry_delay(saying(86_400), 1, 2.0) == 300.0  # and down
    assert retry_delay(saying("soon"), 2, 2.0) == 4.0  # not a number


def test_last_attempt_failure_is_final() -> None:
    a: UUID = uuid4()
    plan = plan_poll([failure(a)], {a: _pair(1, attempt=4, max_retries=3)})
    assert plan.updates[0].needs_retry is False
    b: UUID = uuid4()
    plan = plan_poll(
        [failure(b, LLMErrorCode.CONTENT_TOO_LONG)], {b: _pair(1, attempt=1, max_retries=3)}
    )
    assert plan.updates[0].needs_retry is False


def test_completed_plus_failed_never_exceeds_open_pairs() -> None:
    ids = [uuid4() for _ in range(20)]
    pairs = {cid: _pair(i, open_=i % 3 != 0) for i, cid in enumerate(ids)}
    results = [
        _verdict(cid, pairs[cid]) if i % 2 else failure(cid) for i, cid in enumerate(ids * 3)
    ]
    plan = plan_poll(results, pairs)
    open_count = sum(1 for p in pairs.values() if p.open)
    delta = plan.deltas["b1"]
    assert delta.completed + delta.failed == open_count
