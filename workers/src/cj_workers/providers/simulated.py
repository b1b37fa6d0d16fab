"""`simulated` judge: winners drawn from Bradley-Terry on true scores in request metadata.

For benchmarks of the whole CJ pipeline: the essays' hidden abilities travel in
`metadata[ESSAY_A_METADATA][TRUE_SCORE]` and `metadata[ESSAY_B_METADATA][TRUE_SCORE]`
(common_core.metadata_keys) and are never part of any prompt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from cj_workers.providers.base import JudgeAnswer, JudgeCall, JudgeError
from common_core import EssayComparisonWinner, LLMErrorCode
from common_core.metadata_keys import ESSAY_A_METADATA, ESSAY_B_METADATA, TRUE_SCORE


def true_score(metadata: Mapping[str, Any], essay_key: str) -> float:
    """`metadata[essay_key][TRUE_SCORE]` as a finite float.

    Raises `JudgeError(INVALID_CONFIG)` naming the missing or non-numeric key.
    """
    essay_meta = metadata.get(essay_key)
    if not isinstance(essay_meta, Mapping) or TRUE_SCORE not in essay_meta:
        raise JudgeError(
            LLMErrorCode.INVALID_CONFIG,
            f"the simulated judge needs metadata[{essay_key!r}][{TRUE_SCORE!r}]",
        )
    value = essay_meta[TRUE_SCORE]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JudgeError(
            LLMErrorCode.INVALID_CONFIG,
            f"metadata[{essay_key!r}][{TRUE_SCORE!r}] is not a finite number: {value!r}",
        )
    return float(value)


def p_a_wins(score_a: float, score_b: float, discrimination: float, position_bias: float) -> float:
    """Bradley-Terry probability that A wins: logistic(d * (s_A - s_B) + bias)."""
    return 1.0 / (1.0 + math.exp(-(discrimination * (score_a - score_b) + position_bias)))


class SimulatedJudge:
    """Draws the winner with probability `p_a_wins`, seeded by (seed, correlation_id).

    Confidence is 1 + 8 * |p - 0.5| (1 for a coin flip, 5 for a certain outcome).
    """

    def __init__(self, discrimination: float, position_bias: float, seed: int) -> None:
        self._d = discrimination
        self._bias = position_bias
        self._seed = seed

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """Raises `JudgeError(INVALID_CONFIG)` when a true score is missing."""
        sa = true_score(call.metadata, ESSAY_A_METADATA)
        sb = true_score(call.metadata, ESSAY_B_METADATA)
        p = p_a_wins(sa, sb, self._d, self._bias)
        rng = random.Random(f"{self._seed}:{call.correlation_id}")
        a_wins = rng.random() < p
        return JudgeAnswer(
            winner=EssayComparisonWinner.ESSAY_A if a_wins else EssayComparisonWinner.ESSAY_B,
            justification=f"Simulated draw with P(A wins) = {p:.2f}.",
            confidence=1.0 + 8.0 * abs(p - 0.5),
        )

    async def aclose(self) -> None:
        """Nothing to release."""
