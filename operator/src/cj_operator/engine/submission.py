"""Sending a batch's PENDING pairs to the provider API, in chunks, and recording the answer.

Queued pairs become SUBMITTED; refused ones FAILED (retry rules apply). When the provider API
is down or its queue is full the pairs stay PENDING and the outcome asks the scheduler to try
again later (it owns the backoff). When it refuses the judge itself (a provider its
CJ_ENABLED_PROVIDERS does not list, a model its manifest does not know: INVALID_CONFIG naming
`llm_config_overrides.provider_override` or `.model_override`), no pair of that judge can ever
be asked: the batch fails at once as `JudgeRefused` instead of pair by pair, and what the
provider API still holds of it is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from cj_operator.comparison_requests import build_request
from cj_operator.db import reads, rounds
from cj_operator.db.session import Database
from cj_operator.lifecycle.reasons import Reason
from cj_operator.metrics import OperatorMetrics
from cj_operator.provider_client import (
    ProviderApi,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from cj_plumbing.test_hooks import Point, hold_if_armed
from common_core import BatchStateEnum, LLMErrorCode
from common_core.errors import ErrorDetail

log = structlog.get_logger("cj_operator.engine")

DEFER_ERRORS = frozenset({LLMErrorCode.QUEUE_FULL.value})
"""Refusals that say "not now" rather than "not this request": the pair is sent again later."""

JUDGE_FIELDS = frozenset(
    {"llm_config_overrides.provider_override", "llm_config_overrides.model_override"}
)
"""`details.field` of the provider API's INVALID_CONFIG refusals that concern the judge itself
(the API's `check_request`), not the one request."""


def refuses_the_judge(error: ErrorDetail) -> bool:
    """True when a refusal says the judge (provider or model) cannot be used at all."""
    return (
        error.error_code == LLMErrorCode.INVALID_CONFIG
        and error.details.get("field") in JUDGE_FIELDS
    )


@dataclass(frozen=True)
class SendOutcome:
    """How a send ended, for the scheduler.

    `drained`: nothing PENDING is left. `again`: some pairs were refused (their retries are
    due now). `later`: the provider API is down or full; try again after a backoff, with
    `retry_after` seconds as the server's hint when it gave one. `unavailable` and `refused`
    carry the error for a Kubernetes Event; `judge_refused` the message the batch failed with
    when the provider API refused its judge.
    """

    drained: bool = False
    again: bool = False
    later: bool = False
    retry_after: float | None = None
    unavailable: str | None = None
    refused: str | None = None
    judge_refused: str | None = None


class Submitter:
    """Sends PENDING pairs of a batch (module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        provider: ProviderApi,
        metrics: OperatorMetrics,
        callback_topic: str,
        chunk_size: int,
        on_change: Callable[[str], None],
        retry_backoff_seconds: float = 0.0,
    ) -> None:
        self._db = db
        self._provider = provider
        self._metrics = metrics
        self._callback_topic = callback_topic
        self._chunk_size = chunk_size
        self._on_change = on_change
        self._retry_backoff = retry_backoff_seconds

    async def send(self, uid: str) -> SendOutcome:
        """Send every PENDING pair of `uid` (chunk by chunk) until none is left or the provider
        API says not now; a suspended, finished or unknown batch sends nothing."""
        spec = await reads.sendable_spec(self._db, uid)
        if spec is None:
            return SendOutcome()
        user_prompt = spec.assignment.user_prompt()
        panel = spec.panel()
        again = False
        while True:
            pairs = await reads.pending_pairs(self._db, uid, self._chunk_size)
            if not pairs:
                return SendOutcome(drained=True, again=again)
            requests = [
                build_request(
                    p,
                    batch_uid=uid,
                    user_prompt=user_prompt,
                    judge=panel[p.judge_idx] if p.judge_idx < len(panel) else panel[0],
                    callback_topic=self._callback_topic,
                )
                for p in pairs
            ]
            await hold_if_armed(
                Point.OPERATOR_BEFORE_SUBMIT,
                batch_uid=uid,
                pairs=len(pairs),
                rounds=sorted({p.round for p in pairs}),
            )
            try:
                answer = await self._provider.submit(requests)
            except ProviderUnavailableError as exc:
                self._metrics.provider_errors.labels("unavailable").inc()
                self._metrics.comparisons_submitted.labels("deferred").inc(len(pairs))
                log.warning("provider API unavailable; will resend", error=str(exc))
                return SendOutcome(
                    later=True, again=again, retry_after=exc.retry_after, unavailable=str(exc)
                )
            except ProviderRejectedError as exc:
                self._metrics.provider_errors.labels("rejected").inc()
                refused = [
                    rounds.Refusal(p.pair_id, exc.detail.error_code.value, exc.detail.message)
                    for p in pairs
                ]
                await self._record(uid, [], refused)
                self._metrics.comparisons_submitted.labels("refused").inc(len(pairs))
                return SendOutcome(again=True, refused=str(exc))
            queued: list[int] = []
            refused_items: list[rounds.Refusal] = []
            deferred = 0
            judge_refusal: str | None = None
            for pair, outcome in zip(pairs, answer.outcomes, strict=True):
                if outcome.queued is not None:
                    queued.append(pair.pair_id)
                elif outcome.error is not None and outcome.error.error_code.value in DEFER_ERRORS:
                    deferred += 1
                elif outcome.error is not None:
                    refused_items.append(
                        rounds.Refusal(
                            pair.pair_id, outcome.error.error_code.value, outcome.error.message
                        )
                    )
                    if judge_refusal is None and refuses_the_judge(outcome.error):
                        where = f"spec.judges[{pair.judge_idx}]" if spec.judges else "spec.judge"
                        judge_refusal = (
                            f"The provider API refuses the judge of {where}: "
                            f"{outcome.error.message}. No comparison of it can be asked; "
                            "the batch failed without judging the rest. Fix the judge (or the "
                            "API's CJ_ENABLED_PROVIDERS / model manifest) and create the batch "
                            "again."
                        )
            retries = await self._record(uid, queued, refused_items)
            self._metrics.comparisons_submitted.labels("queued").inc(len(queued))
            self._metrics.comparisons_submitted.labels("refused").inc(len(refused_items))
            self._metrics.comparisons_submitted.labels("deferred").inc(deferred)
            if judge_refusal is not None:
                return await self._fail_for_judge(uid, judge_refusal)
            if refused_items:
                log.warning(
                    "comparisons refused by the provider API",
                    refused=len(refused_items),
                    first=refused_items[0].message,
                    retries=retries,
                )
                again = True
            if deferred:
                log.info("provider queue full; resending later", deferred=deferred)
                return SendOutcome(later=True, again=again)
            self._on_change(uid)

    async def _fail_for_judge(self, uid: str, message: str) -> SendOutcome:
        """Fail the batch as JudgeRefused (unless it finished meanwhile) and cancel what the
        provider API still holds of it (best effort: a worker answers a request of a
        finished batch, and the late answer is only counted)."""
        async with self._db.sessions.begin() as session:
            batch = await rounds.lock_batch(session, uid)
            if batch is None or batch.state.is_terminal:
                return SendOutcome(again=True)
            await rounds.finish(
                session, batch, BatchStateEnum.FAILED, Reason.JUDGE_REFUSED, message
            )
        log.error("the provider API refuses the batch's judge; batch failed", message=message)
        try:
            await self._provider.cancel(uid)
        except (ProviderUnavailableError, ProviderRejectedError) as exc:
            log.warning("could not cancel the failed batch at the provider API", error=str(exc))
        return SendOutcome(again=True, judge_refused=message)

    async def _record(self, uid: str, queued: list[int], refused: list[rounds.Refusal]) -> int:
        async with self._db.sessions.begin() as session:
            batch = await rounds.lock_batch(session, uid)
            if batch is None:
                return 0
            return await rounds.record_submission(
                session, batch, queued, refused, self._retry_backoff
            )
