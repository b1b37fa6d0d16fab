"""The engine's steps on one batch, each one database transaction under the batch row lock.

- :func:`decide`: retries (each reserving its estimated cost again when it fits under
  maxCostUSD, dropped once the limit is reached); when the round is settled, fit
  Bradley-Terry, store the scores, then the next round's pairs (with their reservations,
  `cj_operator.costing`) or SCORING;
- :func:`score`: SCORING -> COMPLETED or FAILED, with a final fit;
- :func:`apply_timeout`: the batch's deadline passed: SCORING when enough succeeded, else FAILED.

The decisions themselves are pure (`cj_operator.planning`); these functions read the state
they need, apply the decision and say what is left to do outside the lock (`StepResult`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cj_operator.clock import utcnow
from cj_operator.costing import DEFAULT_MAX_TOKENS, CostModel, Headroom, Price, judge_price
from cj_operator.db import rounds
from cj_operator.db.models import Batch
from cj_operator.db.session import Database
from cj_operator.lifecycle.reasons import Reason
from cj_operator.lifecycle.transitions import move
from cj_operator.pairing.panel import JudgeHistory, assign_judges
from cj_operator.planning import NextRound, RoundState, Stop, decide_round_end, final_verdict
from cj_operator.scoring.bradley_terry import BradleyTerryFit
from cj_operator.scoring.diagnostics import Diagnostics
from cj_operator.scoring.grades import project_grades
from cj_operator.scoring.stopping import max_score_change, score_change_se
from common_core import BatchStateEnum, ModelInfo

log = structlog.get_logger("cj_operator.engine")


@dataclass(frozen=True)
class Scored:
    """A Bradley-Terry fit and the diagnostics (order effect, misfit) of the same answers."""

    fit: BradleyTerryFit
    diagnostics: Diagnostics | None


Fitter = Callable[[int, rounds.PairLedger], Awaitable[Scored | None]]
"""fit(n_items, ledger) -> the fit and its diagnostics, or None when there is nothing to fit."""

PRICES_WAIT_SECONDS = 30.0
"""How long a batch with maxCostUSD waits before trying again when no prices are known (the
provider API's model list could not be read): without them nothing can be reserved."""


@dataclass(frozen=True)
class KubeEvent:
    """A Kubernetes Event to post about the batch (`kind` Normal or Warning)."""

    kind: str
    reason: Reason
    message: str


@dataclass(frozen=True)
class StepResult:
    """What a step's transaction left to do outside the lock.

    `send`: PENDING pairs to submit; `scoring`: run :func:`score` next; `finished`: the
    batch is terminal (write its follow-ups); `gone`: the batch is unknown or deleted;
    `wake_after`: seconds until a failed comparison's retry is due (advance again then).
    """

    send: bool = False
    finished: bool = False
    scoring: bool = False
    gone: bool = False
    events: tuple[KubeEvent, ...] = ()
    wake_after: float | None = None


async def _cost_model(
    session: AsyncSession, batch: Batch, prices: Sequence[ModelInfo] | None
) -> CostModel | None:
    """What the batch's comparisons reserve; None without prices."""
    if prices is None:
        return None
    spec = batch.parsed_spec()
    # A panel reserves as its dearest judge would (the pair's judge is chosen after the
    # round is cut to the budget): never less than the real cost, at worst a round cut early.
    panel_prices = [judge_price(prices, j.provider, j.model) for j in spec.panel()]
    return CostModel(
        price=Price(
            input_usd_per_mtok=max(p.input_usd_per_mtok for p in panel_prices),
            output_usd_per_mtok=max(p.output_usd_per_mtok for p in panel_prices),
        ),
        prompt_chars=len(spec.assignment.user_prompt()),
        essay_chars=await rounds.essay_chars(session, batch.uid),
        max_tokens=max(j.max_tokens or DEFAULT_MAX_TOKENS for j in spec.panel()),
        calibration=await rounds.cost_calibration(session, batch.uid),
    )


async def decide(
    db: Database, uid: str, fit: Fitter, prices: Sequence[ModelInfo] | None = None
) -> StepResult:
    """One decision step of a running batch (module docstring); `prices`: the model manifest
    (None when unknown: a batch with maxCostUSD then plans nothing and waits)."""
    async with db.sessions.begin() as session:
        batch = await rounds.lock_batch(session, uid)
        if batch is None or batch.deleted_at is not None:
            return StepResult(gone=True)
        if batch.state.is_terminal:
            return StepResult(finished=True)
        if batch.state == BatchStateEnum.INITIALIZING:
            return StepResult()
        if batch.state == BatchStateEnum.SCORING:
            return StepResult(scoring=True)
        if batch.suspended:
            return StepResult()
        limited = batch.max_cost_usd is not None
        if limited and prices is None:
            if await rounds.count_open(session, uid) > 0:
                return StepResult(send=True)
            log.warning("no model prices known: cannot reserve costs; waiting")
            return StepResult(wake_after=PRICES_WAIT_SECONDS)
        costs: CostModel | None = None
        if limited and batch.cost_usd >= (batch.max_cost_usd or 0.0):
            await rounds.drop_retries(session, batch)
        elif await rounds.has_due_retries(session, uid):
            costs = await _cost_model(session, batch, prices)
            headroom = Headroom(
                batch.max_cost_usd,
                spent=batch.cost_usd,
                reserved=await rounds.reserved_usd(session, uid),
                calibrated=costs is None or costs.calibration.trusted,
            )
            await rounds.create_retries(session, batch, costs, headroom)
        if await rounds.count_open(session, uid) > 0:
            return StepResult(send=True)
        if limited:
            # Nothing is in flight, so nothing will free room: a due retry that did not fit
            # now never will.
            dropped = await rounds.drop_retries(session, batch, due_only=True)
            if dropped:
                log.info("retries dropped: their cost does not fit under maxCostUSD", n=dropped)
        waiting = await rounds.next_retry_at(session, uid)
        if waiting is not None:  # a retry waits for its backoff: the round is not settled
            return StepResult(wake_after=max(0.0, (waiting - utcnow()).total_seconds()))

        spec = batch.parsed_spec()
        if costs is None:
            costs = await _cost_model(session, batch, prices)
        ledger = await rounds.pair_ledger(session, uid, batch.parsed_spec().panel())
        previous = await rounds.previous_scores(session, uid, batch.essays_count)
        results_at_previous_fit = batch.fitted_results if previous is not None else None
        scored = await fit(batch.essays_count, ledger)
        fitted = scored.fit if scored is not None else None
        if scored is not None:
            if results_at_previous_fit is None or len(ledger.outcomes) > results_at_previous_fit:
                batch.max_score_change = max_score_change(previous, scored.fit.scores)
                batch.score_change_se = score_change_se(
                    previous, scored.fit.scores, scored.fit.standard_errors
                )
            await rounds.write_scores(session, batch, scored.fit, ledger, scored.diagnostics)
        decision = decide_round_end(
            RoundState(
                n_items=batch.essays_count,
                round=batch.round,
                budget=batch.budget,
                history=ledger.history,
                outcomes=ledger.outcomes,
                final_failures=ledger.final_failures,
                previous_scores=previous,
                fit=fitted,
                cost_usd=batch.cost_usd,
                max_cost_usd=batch.max_cost_usd,
                min_success_rate=batch.min_success_rate,
                stability_threshold_se=spec.stopping.score_stability_se,
                min_results_for_stability=spec.stopping.min_results_for_stability,
                reliability_target=spec.stopping.reliability_target,
                results_at_previous_fit=results_at_previous_fit,
                reserved_usd=0.0,  # settled: nothing is in flight
                costs=costs,
            )
        )
        if isinstance(decision, NextRound):
            shares = spec.panel_shares()
            judges = assign_judges(
                decision.pairs, shares, JudgeHistory.of(len(shares), ledger.assignments)
            )
            n = await rounds.insert_round(
                session, batch, decision.round, decision.pairs, judges, decision.costs
            )
            log.info("round planned", round=decision.round, pairs=n)
            message = f"Round {decision.round}: {n} comparisons to submit. {decision.message}"
            return StepResult(
                send=True, events=(KubeEvent("Normal", Reason.ROUND_PLANNED, message),)
            )
        assert isinstance(decision, Stop)
        move(
            batch,
            BatchStateEnum.SCORING,
            reason=decision.reason,
            message=decision.message,
            now=utcnow(),
        )
        log.info("batch stops submitting", reason=decision.reason, message=decision.message)
        return StepResult(scoring=True)


async def score(db: Database, uid: str, fit: Fitter) -> StepResult:
    """SCORING -> COMPLETED or FAILED, with a final fit."""
    async with db.sessions.begin() as session:
        batch = await rounds.lock_batch(session, uid)
        if batch is None or batch.state != BatchStateEnum.SCORING:
            return StepResult(finished=batch is not None and batch.state.is_terminal)
        ledger = await rounds.pair_ledger(session, uid, batch.parsed_spec().panel())
        scored = await fit(batch.essays_count, ledger)
        if scored is not None:
            # max_score_change and score_change_se keep the values the stop was decided on: the
            # final fit adds only answers in flight; refitting the same data would report ~0.
            await rounds.write_scores(session, batch, scored.fit, ledger, scored.diagnostics)
            anchors = await rounds.anchor_grades(session, uid)
            projection = (
                await asyncio.to_thread(
                    project_grades, scored.fit.scores, scored.fit.standard_errors, anchors
                )
                if anchors
                else None
            )
            await rounds.write_grades(session, batch, projection)
        stop_reason = Reason(batch.reason)
        if stop_reason == Reason.LOW_SUCCESS_RATE:
            verdict = Stop(stop_reason, batch.message, failed=True)
        else:
            verdict = final_verdict(
                stop_reason,
                batch.message,
                len(ledger.outcomes),
                ledger.final_failures,
                batch.min_success_rate,
            )
        state = BatchStateEnum.FAILED if verdict.failed else BatchStateEnum.COMPLETED
        await rounds.finish(session, batch, state, verdict.reason, verdict.message)
        log.info("batch finished", state=state.value, reason=verdict.reason)
        events = [
            KubeEvent(
                "Warning" if verdict.failed else "Normal",
                Reason.FAILED if verdict.failed else Reason.COMPLETED,
                f"{verdict.reason}: {verdict.message}",
            )
        ]
        order = scored.diagnostics.order if scored and scored.diagnostics else None
        if order is not None and order.significant:
            events.append(
                KubeEvent(
                    "Warning",
                    Reason.ORDER_EFFECT_SIGNIFICANT,
                    f"The judge favours slot {'A' if order.order_effect > 0 else 'B'}: "
                    f"{order.order_effect:+.2f} logits (SE {order.standard_error:.2f}, "
                    f"p = {order.p_value:.3g}).",
                )
            )
        return StepResult(finished=True, events=tuple(events))


async def apply_timeout(db: Database, uid: str) -> str | None:
    """Apply a batch's timeout: SCORING when enough succeeded, else FAILED.

    "Enough" is minSuccessRate of the comparisons asked so far. Returns the message when the
    batch changed, None when it did not (unknown, deleted, scoring or finished).
    """
    async with db.sessions.begin() as session:
        batch = await rounds.lock_batch(session, uid)
        if batch is None or batch.state.is_terminal or batch.deleted_at is not None:
            return None
        if batch.state == BatchStateEnum.SCORING:
            return None
        ledger = await rounds.pair_ledger(session, uid, batch.parsed_spec().panel())
        asked = len(ledger.history)
        succeeded = len(ledger.outcomes)
        rate = succeeded / asked if asked else 0.0
        allowed = batch.deadline_at - batch.created_at if batch.deadline_at else None
        message = (
            f"Timed out after {allowed or 'its deadline'} with {succeeded} of {asked} "
            f"comparisons answered ({rate:.0%})."
        )
        if asked and succeeded and rate >= batch.min_success_rate:
            move(
                batch,
                BatchStateEnum.SCORING,
                reason=Reason.TIMED_OUT,
                message=message + " Scored what it had.",
                now=utcnow(),
            )
        else:
            await rounds.finish(
                session,
                batch,
                BatchStateEnum.FAILED,
                Reason.TIMED_OUT,
                message + f" Below minSuccessRate {batch.min_success_rate:.0%}.",
            )
        return message
