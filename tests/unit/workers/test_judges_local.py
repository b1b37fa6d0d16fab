"""The local judges: offline (essay quality), simulated (Bradley-Terry) and mock."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pytest
from scipy.stats import spearmanr

from cj_workers.providers.base import JudgeCall, JudgeError
from cj_workers.providers.mock import MockJudge, parse_directives
from cj_workers.providers.offline import (
    confidence_from_gap,
    essay_features,
    essay_quality,
    offline_verdict,
)
from cj_workers.providers.simulated import SimulatedJudge, p_a_wins
from common_core import EssayComparisonWinner, LLMErrorCode, LLMProviderType
from common_core.metadata_keys import ESSAY_A_METADATA, ESSAY_B_METADATA, TRUE_SCORE
from tests.support.ellipse import require_ellipse

# Written for these tests (not from any corpus).
WEAK = (
    "i think school is good. i like it becuase my freinds are their and we play alot. "
    "school is good and i like school becuase it is good"
)
STRONG = (
    "Schools give young people more than lessons. They offer a community in which students "
    "learn to cooperate, to argue respectfully and to take responsibility for their own "
    "progress. Although homework can feel tedious, it builds habits that last a lifetime."
)


def call(
    essay_a: str, essay_b: str, model: str = "m", metadata: Mapping[str, Any] | None = None
) -> JudgeCall:
    return JudgeCall(
        correlation_id=uuid.uuid4(),
        provider=LLMProviderType.MOCK,
        model=model,
        system_prompt="s",
        user_message="u",
        user_prompt="p",
        essay_a=essay_a,
        essay_b=essay_b,
        temperature=0.0,
        max_tokens=10,
        timeout_seconds=5,
        metadata=metadata or {},
    )


def test_essay_quality_is_deterministic_and_prefers_the_better_essay() -> None:
    assert essay_quality(STRONG) == essay_quality(STRONG)
    assert essay_quality(STRONG) > essay_quality(WEAK)
    features = essay_features(WEAK)
    assert features["misspelled_rate"] > essay_features(STRONG)["misspelled_rate"]
    assert features["lowercase_i_rate"] > 0


def test_offline_verdict_does_not_depend_on_position() -> None:
    ab = offline_verdict(STRONG, WEAK)
    ba = offline_verdict(WEAK, STRONG)
    assert ab.winner is EssayComparisonWinner.ESSAY_A
    assert ba.winner is EssayComparisonWinner.ESSAY_B
    assert ab.confidence == ba.confidence
    same = offline_verdict(STRONG, STRONG)
    assert same.confidence == 1.0


def test_confidence_grows_with_the_quality_gap() -> None:
    values = [confidence_from_gap(g) for g in (0.0, 0.3, 1.0, 2.0, 10.0, -10.0)]
    assert values == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]


def test_empty_text_gets_a_finite_low_score() -> None:
    assert math.isfinite(essay_quality(""))
    assert essay_quality("") < essay_quality(WEAK)


def test_essay_quality_tracks_human_scores_on_ellipse() -> None:
    """The issue's target: median Spearman >= 0.55 across the ELLIPSE prompts."""
    essays = require_ellipse()
    by_prompt: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in essays:
        by_prompt[e.prompt].append((essay_quality(e.text), e.overall))
    rhos = [
        spearmanr([q for q, _ in pairs], [h for _, h in pairs]).statistic
        for pairs in by_prompt.values()
        if len(pairs) >= 10
    ]
    assert statistics.median(rhos) >= 0.55, sorted(rhos)


async def test_simulated_judge_needs_true_scores() -> None:
    judge = SimulatedJudge(1.0, 0.0, 0)
    with pytest.raises(JudgeError) as err:
        await judge.judge(call("a", "b", metadata={ESSAY_A_METADATA: {TRUE_SCORE: 1.0}}))
    assert err.value.code is LLMErrorCode.INVALID_CONFIG
    assert ESSAY_B_METADATA in err.value.message
    with pytest.raises(JudgeError):
        await judge.judge(
            call(
                "a",
                "b",
                metadata={
                    ESSAY_A_METADATA: {TRUE_SCORE: "high"},
                    ESSAY_B_METADATA: {TRUE_SCORE: 0},
                },
            )
        )


async def test_simulated_judge_follows_bradley_terry() -> None:
    judge = SimulatedJudge(discrimination=1.0, position_bias=0.0, seed=7)
    meta = {ESSAY_A_METADATA: {TRUE_SCORE: 1.0}, ESSAY_B_METADATA: {TRUE_SCORE: 0.0}}
    wins = 0
    n = 2000
    for _ in range(n):
        answer = await judge.judge(call("a", "b", metadata=meta))
        wins += answer.winner is EssayComparisonWinner.ESSAY_A
        assert 1.0 <= answer.confidence <= 5.0
    expected = p_a_wins(1.0, 0.0, 1.0, 0.0)  # 0.731
    assert abs(wins / n - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


async def test_simulated_judge_is_reproducible_per_request() -> None:
    judge = SimulatedJudge(1.0, 0.0, 3)
    meta = {ESSAY_A_METADATA: {TRUE_SCORE: 0.0}, ESSAY_B_METADATA: {TRUE_SCORE: 0.0}}
    c = call("a", "b", metadata=meta)
    first = [(await judge.judge(c)).winner for _ in range(5)]
    assert len(set(first)) == 1


def test_position_bias_favours_slot_a() -> None:
    assert p_a_wins(0.0, 0.0, 1.0, 0.5) > 0.5 > p_a_wins(0.0, 0.0, 1.0, -0.5)


async def test_mock_fails_the_first_n_calls_then_answers() -> None:
    judge = MockJudge()
    c = call("long essay", "short", model="mock?fail=server_error&fail_times=2")
    for _ in range(2):
        with pytest.raises(JudgeError) as err:
            await judge.judge(c)
        assert err.value.code is LLMErrorCode.PROVIDER_API_ERROR and err.value.retryable
    assert (await judge.judge(c)).winner is EssayComparisonWinner.ESSAY_A


@pytest.mark.parametrize(
    ("directive", "code"),
    [
        ("answer=malformed", LLMErrorCode.PARSING_ERROR),
        ("answer=bad_confidence", LLMErrorCode.INVALID_RESPONSE),
        ("answer=refusal", LLMErrorCode.INVALID_RESPONSE),
        ("answer=no_winner", LLMErrorCode.PARSING_ERROR),
        ("fail=rate_limit&retry_after=2", LLMErrorCode.PROVIDER_RATE_LIMIT),
        ("fail=timeout", LLMErrorCode.PROVIDER_TIMEOUT),
        ("fail=too_long", LLMErrorCode.CONTENT_TOO_LONG),
        ("nonsense=1", LLMErrorCode.INVALID_CONFIG),
    ],
)
async def test_mock_directives(directive: str, code: LLMErrorCode) -> None:
    with pytest.raises(JudgeError) as err:
        await MockJudge().judge(call("a", "b", model=f"mock?{directive}"))
    assert err.value.code is code


def test_mock_directive_parsing() -> None:
    assert parse_directives("mock?latency_ms=5&winner=b") == {"latency_ms": "5", "winner": "b"}
    assert parse_directives("mock") == {}
