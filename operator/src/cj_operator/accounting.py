"""Callback accounting: what one poll of callback events does to pairs and batch counters.

Pure rules, no I/O. The consumer reads the pairs a poll names, asks `plan_poll` what to do,
applies the plan in one transaction (each batch's counters updated once), and only then
commits the Kafka offsets.

Rules:
- A callback is recorded at most once per correlation id: the first answer for an open pair
  (PENDING or SUBMITTED) counts; later ones are duplicates (or stale, when the operator had
  already closed the pair as overdue, or the batch is finished). Unknown ids are counted.
- The cost of a duplicate or stale answer was spent all the same: each such judge call is a
  `LateCall` whose cost and tokens go into the batch's totals (not its counters), once per
  call. A call is identified by (correlation id, `completed_at`): a redelivered event repeats
  the recorded answer's `completed_at` and costs nothing more; a second call has its own.
- Each pair row is counted in `submitted` before it is sent and closes exactly once, so
  completed + failed never exceeds submitted.
- A failed comparison is retried (a new row: new correlation id, attempt + 1) while
  attempt <= maxRetries, unless its error cannot change on a retry (`NON_RETRYABLE`).
- A result is first checked against the pair of its correlation id (`OpenPair.forgery`): a
  forged one is not recorded; the consumer dead-letters it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from cj_plumbing.backoff import clamp_retry_after, exponential_backoff
from common_core import LLMComparisonResultV1, LLMErrorCode, metadata_keys

OVERDUE_ERROR_CODE = "CJ_CALLBACK_OVERDUE"
"""`error_code` of a pair the batch monitor closed because its callback never came."""

NON_RETRYABLE: frozenset[str] = frozenset(
    {
        LLMErrorCode.INVALID_PROMPT,
        LLMErrorCode.CONTENT_TOO_LONG,
        LLMErrorCode.INVALID_CONFIG,
        LLMErrorCode.CALLBACK_TOPIC_MISSING,
        LLMErrorCode.INVALID_CALLBACK_TOPIC,
        LLMErrorCode.COST_LIMIT_EXCEEDED,
    }
)
"""Errors a retry of the same request cannot fix (the request itself is the problem)."""


RETRY_BACKOFF_CAP_SECONDS = 300.0
"""Longest wait before a retry (also the cap of a provider's Retry-After hint)."""


def retry_delay(result: LLMComparisonResultV1 | None, attempt: int, base_seconds: float) -> float:
    """Seconds to wait before re-submitting a comparison whose attempt `attempt` failed.

    The error's `details.retry_after_seconds` (what the provider's Retry-After said) when it is
    a number, clamped to [1, 300]; otherwise `base_seconds * 2^(attempt - 1)`, capped at 300
    (0 when `base_seconds` is 0: retry at once).
    """
    hint = None
    if result is not None and result.error_detail is not None:
        hint = result.error_detail.details.get("retry_after_seconds")
    if isinstance(hint, int | float) and not isinstance(hint, bool) and math.isfinite(hint):
        return clamp_retry_after(float(hint), floor=1.0, cap=RETRY_BACKOFF_CAP_SECONDS)
    if base_seconds <= 0:
        return 0.0
    return exponential_backoff(
        attempt, base=base_seconds, cap=RETRY_BACKOFF_CAP_SECONDS, jitter=False
    )


def should_retry(error_code: str | None, attempt: int, max_retries: int) -> bool:
    """True when a comparison whose attempt `attempt` failed with `error_code` is retried.

    Attempts are numbered from 1, so a pair gets at most 1 + `max_retries` attempts.
    Transient failures (rate limits, timeouts, unparseable answers, overdue callbacks,
    provider outages) are retried; `NON_RETRYABLE` ones are not.
    """
    if attempt > max_retries:
        return False
    return error_code not in NON_RETRYABLE


class Outcome(StrEnum):
    """What happened to one callback event (also the metrics label)."""

    SUCCESS = "success"
    FAILURE = "failure"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"
    FORGED = "forged"
    """Its request_metadata names another batch, pair or essay than its correlation id's pair,
    or it is a verdict that leaves out one of those keys (`OpenPair.forgery`): not recorded,
    dead-lettered."""
    UNRECORDABLE = "unrecordable"
    """Valid, but the database refused it (a poison record); dead-lettered with the reason."""


@dataclass(frozen=True)
class OpenPair:
    """What accounting needs to know about one stored comparison pair."""

    pair_id: int
    batch_uid: str
    open: bool
    """PENDING or SUBMITTED: no answer recorded yet."""
    closed_by_operator: bool
    """Closed as overdue by the batch monitor (a late callback for it is stale)."""
    attempt: int
    max_retries: int
    batch_finished: bool
    """The batch is COMPLETED, FAILED or CANCELLED: nothing more is recorded for it."""
    essay_a_id: str = ""
    essay_b_id: str = ""
    answer_completed_at: datetime | None = None
    """`completed_at` of the answer recorded for it (None: none recorded, or before 0003)."""

    def identity(self) -> dict[str, Any]:
        """The `metadata_keys.IDENTITY_KEYS` entries of every request sent for this pair (what
        `comparison_requests.build_request` puts in its metadata): batch uid, pair id, essay
        ids."""
        return {
            metadata_keys.BATCH_ID: self.batch_uid,
            metadata_keys.PAIR_ID: self.pair_id,
            metadata_keys.ESSAY_A_ID: self.essay_a_id,
            metadata_keys.ESSAY_B_ID: self.essay_b_id,
        }

    def forgery(self, result: LLMComparisonResultV1) -> str | None:
        """Why `result` cannot be this pair's answer, or None.

        Forged: an identity key (`identity`) in its echoed request_metadata whose value
        differs from this pair's (null included); or, for a verdict (a success result), an
        identity key it does not echo at all, since every request carried them and workers
        echo the whole dict. An error event may lack keys: a worker that gives up on an
        unreadable stream entry echoes only the metadata it could read.
        """
        echoed = result.request_metadata
        identity = self.identity()
        for key, want in identity.items():
            if key in echoed and (echoed[key] is None or str(echoed[key]) != str(want)):
                return (
                    f"forged: request_metadata.{key} is {echoed[key]!r}, but "
                    f"correlation id {result.correlation_id} belongs to {key} {want!r}"
                )
        missing = [key for key in identity if key not in echoed]
        if missing and result.is_success:
            return (
                f"forged: a verdict without request_metadata.{missing[0]}; every request for "
                f"correlation id {result.correlation_id} carried {missing[0]} "
                f"{identity[missing[0]]!r}"
            )
        return None


@dataclass(frozen=True)
class PairUpdate:
    """Close one pair with this callback's answer."""

    pair_id: int
    result: LLMComparisonResultV1
    success: bool
    needs_retry: bool


@dataclass
class BatchDelta:
    """How one poll changes one batch's counters (applied once, in one UPDATE)."""

    completed: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def add(self, result: LLMComparisonResultV1) -> None:
        """Count one recorded result."""
        if result.is_success:
            self.completed += 1
        else:
            self.failed += 1
        self.cost_usd += result.cost_estimate
        self.prompt_tokens += result.token_usage.prompt_tokens
        self.completion_tokens += result.token_usage.completion_tokens
        self.total_tokens += result.token_usage.total_tokens


@dataclass(frozen=True)
class LateCall:
    """A judge call answered too late to count (duplicate or stale); its cost was spent."""

    pair_id: int
    batch_uid: str
    outcome: Outcome
    result: LLMComparisonResultV1


@dataclass
class PollPlan:
    """Everything one poll changes: pair updates, batch deltas, and the outcome counts."""

    updates: list[PairUpdate] = field(default_factory=list)
    deltas: dict[str, BatchDelta] = field(default_factory=dict)
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    forged: list[tuple[LLMComparisonResultV1, str]] = field(default_factory=list)
    """Forged results (the objects passed in), with the reason; the consumer dead-letters them."""
    late: list[LateCall] = field(default_factory=list)
    """Duplicate and stale answers that are judge calls of their own (their cost counts); once
    recorded, only those counted by this poll (a redelivered one was counted before)."""

    @property
    def touched_batches(self) -> set[str]:
        """Batches whose counters or cost change."""
        return set(self.deltas) | {call.batch_uid for call in self.late}


def plan_poll(results: Iterable[LLMComparisonResultV1], pairs: Mapping[UUID, OpenPair]) -> PollPlan:
    """Decide what a poll's valid callback results do, in order.

    `pairs` maps correlation ids to the stored pairs (ids the operator does not know are
    absent). A correlation id appearing twice in one poll is recorded once.
    """
    plan = PollPlan()
    closed_now: set[UUID] = set()
    calls: set[tuple[UUID, datetime]] = {
        (cid, pair.answer_completed_at)
        for cid, pair in pairs.items()
        if pair.answer_completed_at is not None
    }
    for result in results:
        pair = pairs.get(result.correlation_id)
        if pair is None:
            plan.outcomes[Outcome.UNKNOWN] += 1
            continue
        forgery = pair.forgery(result)
        if forgery is not None:
            plan.outcomes[Outcome.FORGED] += 1
            plan.forged.append((result, forgery))
            continue
        call = (result.correlation_id, result.completed_at)
        late: Outcome | None = None
        if pair.batch_finished or pair.closed_by_operator:
            late = Outcome.STALE
        elif not pair.open or result.correlation_id in closed_now:
            late = Outcome.DUPLICATE
        if late is not None:
            plan.outcomes[late] += 1
            if call not in calls:
                calls.add(call)
                plan.late.append(LateCall(pair.pair_id, pair.batch_uid, late, result))
            continue
        closed_now.add(result.correlation_id)
        calls.add(call)
        if result.is_success:
            needs_retry = False
            plan.outcomes[Outcome.SUCCESS] += 1
        else:
            code = result.error_detail.error_code.value if result.error_detail else None
            needs_retry = should_retry(code, pair.attempt, pair.max_retries)
            plan.outcomes[Outcome.FAILURE] += 1
        plan.updates.append(PairUpdate(pair.pair_id, result, result.is_success, needs_retry))
        plan.deltas.setdefault(pair.batch_uid, BatchDelta()).add(result)
    return plan
