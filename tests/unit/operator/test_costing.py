"""Cost estimates and reservations (pure), and a simulation: maxCostUSD is not overshot by more
than one comparison's cost over many random prices, essay lengths and tokenizers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from cj_operator.costing import (
    CALIBRATION_MIN_ANSWERS,
    PROMPT_OVERHEAD_TOKENS,
    Calibration,
    CostModel,
    Headroom,
    Price,
    affordable,
    calibration,
    estimate_cost_usd,
    judge_price,
)
from cj_operator.lifecycle.reasons import Reason
from cj_operator.planning import NextRound, RoundState, Stop, decide_round_end
from common_core import LLMProviderType, ModelInfo

A, OAI, M = LLMProviderType.ANTHROPIC, LLMProviderType.OPENAI, LLMProviderType.MOCK
MODELS = [
    ModelInfo(provider=A, model="sonnet", input_usd_per_mtok=3.0, output_usd_per_mtok=15.0),
    ModelInfo(provider=A, model="haiku", input_usd_per_mtok=1.0, output_usd_per_mtok=5.0),
    ModelInfo(provider=OAI, model="mini", input_usd_per_mtok=0.4, output_usd_per_mtok=1.6),
    ModelInfo(provider=OAI, model="odd", input_usd_per_mtok=2.0, output_usd_per_mtok=1.0),
]


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        (A, "haiku", Price(1.0, 5.0)),
        (A, None, Price(3.0, 15.0)),  # unset model: the provider's highest prices
        (OAI, None, Price(2.0, 1.6)),  # highest input and highest output, from any model
        (None, None, Price(3.0, 15.0)),
        (A, "not-listed", Price(0.0, 0.0)),  # the workers charge 0 for it too
        (M, None, Price(0.0, 0.0)),
    ],
)
def test_judge_price(provider: LLMProviderType | None, model: str | None, expected: Price) -> None:
    assert judge_price(MODELS, provider, model) == expected


def test_estimate_follows_the_documented_formula() -> None:
    # (6,000 / 4 + 600) x 3 USD/MTok + 1,024 x 15 USD/MTok (the docstring's example)
    assert estimate_cost_usd(Price(3.0, 15.0), 6000, 1024) == pytest.approx(0.02166)
    assert estimate_cost_usd(Price(1.0, 0.0), 1, 0) == pytest.approx(
        (1 + PROMPT_OVERHEAD_TOKENS) / 1e6
    )


def test_calibration_is_the_largest_ratio_with_an_estimate() -> None:
    assert calibration([]) == Calibration()
    assert calibration([(0.0, 1.0)]) == Calibration()
    few = calibration([(1.0, 0.5), (2.0, 1.5), (0.0, 9.0)])
    assert few.factor == pytest.approx(0.75) and few.answers == 2 and not few.trusted
    assert calibration([(1.0, 0.5)] * CALIBRATION_MIN_ANSWERS).trusted


def test_headroom_counts_spent_and_reserved() -> None:
    room = Headroom(1.0, spent=0.5, reserved=0.25, calibrated=True)
    assert room.take(0.2)
    assert not room.take(0.1)  # 0.5 + 0.25 + 0.2 + 0.1 > 1.0
    assert room.take(0.05)
    assert room.taken == pytest.approx(0.25) and room.count == 2


def test_uncalibrated_headroom_takes_half_but_always_one_that_fits() -> None:
    room = Headroom(1.0, spent=0.0, reserved=0.0, calibrated=False)
    assert affordable([0.2, 0.2, 0.2], room) == 2  # 0.4 <= 0.5, 0.6 > 0.5
    alone = Headroom(1.0, spent=0.0, reserved=0.0, calibrated=False)
    assert affordable([0.8, 0.01], alone) == 1  # the first fits the whole room
    assert affordable([1.5], Headroom(1.0, spent=0.0, reserved=0.0, calibrated=False)) == 0


def test_a_round_is_cut_at_the_first_pair_that_does_not_fit() -> None:
    # Stops at the first misfit even though a later, cheaper pair would fit: no bias
    # towards short essays at the boundary.
    room = Headroom(1.0, spent=0.0, reserved=0.0, calibrated=True)
    assert affordable([0.4, 0.4, 0.3, 0.1], room) == 2
    assert Headroom(None, spent=5.0, reserved=5.0, calibrated=False).take(1e9)


def _state(n: int, costs: CostModel | None, **changes: object) -> RoundState:
    fields: dict[str, object] = {
        "n_items": n,
        "round": 0,
        "budget": n * 5,
        "history": [],
        "outcomes": [],
        "final_failures": 0,
        "previous_scores": None,
        "fit": None,
        "cost_usd": 0.0,
        "max_cost_usd": None,
        "min_success_rate": 0.0,
        "stability_threshold_se": 1e-12,
        "min_results_for_stability": 10**6,
        "reliability_target": None,
        "costs": costs,
    }
    fields.update(changes)
    return RoundState(**fields)  # type: ignore[arg-type]  # the dataclass checks nothing


def test_planning_cuts_the_round_at_the_reservation_boundary() -> None:
    costs = CostModel(Price(1000.0, 0.0), 0, [400] * 10, 0, Calibration(1.0, 10))
    each = costs.estimate(0, 1)  # (200 + 600) x 1000 / 1e6 = 0.8 USD
    assert each == pytest.approx(0.8)
    unlimited = decide_round_end(_state(10, costs))
    assert isinstance(unlimited, NextRound) and len(unlimited.pairs) == 5
    cut = decide_round_end(_state(10, costs, max_cost_usd=3.0, cost_usd=0.5))
    assert isinstance(cut, NextRound)
    assert len(cut.pairs) == 3  # 0.5 + 3 x 0.8 = 2.9 <= 3.0 < 3.7
    assert [c for pair in cut.costs for c in pair] == pytest.approx([0.8] * 6)
    assert "Cut to 3 of 5 pairs" in cut.message
    stop = decide_round_end(_state(10, costs, max_cost_usd=3.0, cost_usd=2.5))
    assert isinstance(stop, Stop) and stop.reason == Reason.COST_LIMIT_EXCEEDED
    assert "$0.8000" in stop.message and "$0.5000 left" in stop.message


def test_calibration_scales_the_reservation() -> None:
    costs = CostModel(Price(1000.0, 0.0), 0, [400] * 10, 0, Calibration(0.25, 10))
    cut = decide_round_end(_state(10, costs, max_cost_usd=1.0))
    assert isinstance(cut, NextRound)
    assert len(cut.pairs) == 5  # 5 x 0.2 = 1.0: every pair of the round fits
    assert cut.costs[0] == pytest.approx((0.8, 0.2))


def test_until_calibrated_a_round_reserves_half_of_what_is_left() -> None:
    costs = CostModel(Price(1000.0, 0.0), 0, [400] * 10, 0, Calibration(0.25, 3))
    cut = decide_round_end(_state(10, costs, max_cost_usd=1.0))
    assert isinstance(cut, NextRound)
    assert len(cut.pairs) == 2  # 2 x 0.2 = 0.4 <= 0.5 < 0.6


# --- simulation ---------------------------------------------------------------------------

PRICE_TABLE = [(5.0, 25.0), (3.0, 15.0), (1.0, 5.0), (1.25, 10.0), (0.25, 2.0), (0.1, 0.4)]


@dataclass(frozen=True)
class Run:
    overshoot: float
    """Final spent cost minus maxCostUSD (USD; negative: under)."""
    largest_pair: float
    """The dearest single comparison's actual cost in the run (USD)."""
    spent_share: float
    """Final spent cost over maxCostUSD."""
    reason: str
    """Why the batch stopped."""


def _simulate(seed: int, max_essays: int = 24) -> Run:
    """One batch run through `decide_round_end` with random prices, lengths and tokenizers.

    Truth: the judge's tokenizer needs `chars_per_token` in [2.8, 4.6] characters per token
    (4 is assumed), each request +-8% around it; the workers add 450-750 prompt tokens (600
    assumed); answers take 40-400 tokens, capped by maxTokens (64, 256 or 1,024). The named
    model is priced exactly, or the model is unset and the estimate takes the provider's
    highest prices while a cheaper one answers. maxCostUSD is 5-120% of what the whole budget
    would cost. Every round is in flight at once; its answers come back before the next.
    """
    rng = random.Random(seed)
    n = rng.randint(4, max_essays)
    chars = [int(math.exp(rng.uniform(math.log(300), math.log(15_000)))) for _ in range(n)]
    prompt_chars = rng.randint(50, 3000)
    max_tokens = rng.choice([64, 256, 1024])
    true_in, true_out = rng.choice(PRICE_TABLE)
    if rng.random() < 0.3:  # model unset: estimated at the dearest prices of the provider
        price = Price(max(true_in, 5.0), max(true_out, 25.0))
    else:
        price = Price(true_in, true_out)
    chars_per_token = rng.uniform(2.8, 4.6)
    overhead = rng.randint(450, 750)
    budget = rng.randint(n, n * 6)

    def actual(a: int, b: int) -> float:
        total = prompt_chars + chars[a] + chars[b]
        prompt = total / (chars_per_token * rng.uniform(0.92, 1.08)) + overhead
        answer = min(max_tokens, rng.randint(40, 400))
        return (prompt * true_in + answer * true_out) / 1e6

    # maxCostUSD relative to the cost of the whole budget at mean pair size.
    mean_pair = actual(0, 1 % n) if n > 1 else 0.0
    limit = max(1e-6, budget * mean_pair * rng.uniform(0.05, 1.2))
    history: list[tuple[int, int]] = []
    observations: list[tuple[float, float]] = []
    spent = 0.0
    largest = 0.0
    round_number = 0
    while True:
        costs = CostModel(price, prompt_chars, chars, max_tokens, calibration(observations))
        decision = decide_round_end(
            _state(
                n,
                costs,
                round=round_number,
                budget=budget,
                history=history,
                cost_usd=spent,
                max_cost_usd=limit,
            )
        )
        if isinstance(decision, Stop):
            break
        assert isinstance(decision, NextRound)
        round_number = decision.round
        for (a, b), (estimate, _) in zip(decision.pairs, decision.costs, strict=True):
            cost = actual(a, b)
            history.append((a, b))
            observations.append((estimate, cost))
            spent += cost
            largest = max(largest, cost)
    return Run(spent - limit, largest, spent / limit, decision.reason)


def test_simulated_overshoot_stays_below_one_comparisons_cost() -> None:
    runs = [_simulate(seed) for seed in range(300)]
    worst = max(runs, key=lambda r: r.overshoot / r.largest_pair if r.largest_pair else 0.0)
    assert worst.overshoot <= worst.largest_pair, worst
    over = [r for r in runs if r.overshoot > 0]
    # Overshooting at all is rare, and the batches that stop on the limit use most of it.
    assert len(over) <= len(runs) * 0.05
    limited = [r for r in runs if r.reason == Reason.COST_LIMIT_EXCEEDED]
    assert len(limited) > len(runs) / 2
    assert sum(r.spent_share for r in limited) / len(limited) > 0.8
