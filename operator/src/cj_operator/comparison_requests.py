"""Build the provider API's comparison requests for stored pairs (pure).

Every request carries `callback_topic`, the batch's user prompt (assignment then rubric), the
two essays' texts as essay_a / essay_b, the judge as `llm_config_overrides`, and metadata with
the keys of `common_core.metadata_keys` (batch uid, pair id, round, attempt, essay ids and each
essay's own metadata). Metadata never reaches the judge's prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from cj_operator.spec import Judge
from common_core import LLMComparisonRequest, LLMConfigOverrides, metadata_keys


@dataclass(frozen=True)
class EssayRecord:
    """A stored essay: position in the batch, id, text and metadata."""

    idx: int
    essay_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PairToSend:
    """A stored pair row not yet confirmed by the provider API."""

    pair_id: int
    correlation_id: UUID
    round: int
    attempt: int
    essay_a: EssayRecord
    essay_b: EssayRecord
    judge_idx: int = 0


def llm_overrides(judge: Judge) -> LLMConfigOverrides | None:
    """The judge as per-request overrides; None when the spec leaves every field unset."""
    overrides = LLMConfigOverrides(
        provider_override=judge.provider,
        model_override=judge.model,
        temperature_override=judge.temperature,
        max_tokens_override=judge.max_tokens,
    )
    return None if overrides == LLMConfigOverrides() else overrides


def build_request(
    pair: PairToSend,
    *,
    batch_uid: str,
    user_prompt: str,
    judge: Judge,
    callback_topic: str,
) -> LLMComparisonRequest:
    """The `LLMComparisonRequest` for one pair row (its correlation id is the row's)."""
    return LLMComparisonRequest(
        user_prompt=user_prompt,
        essay_a=pair.essay_a.text,
        essay_b=pair.essay_b.text,
        callback_topic=callback_topic,
        llm_config_overrides=llm_overrides(judge),
        correlation_id=pair.correlation_id,
        metadata={
            metadata_keys.BATCH_ID: batch_uid,
            metadata_keys.PAIR_ID: pair.pair_id,
            metadata_keys.ROUND: pair.round,
            metadata_keys.ATTEMPT: pair.attempt,
            metadata_keys.ESSAY_A_ID: pair.essay_a.essay_id,
            metadata_keys.ESSAY_B_ID: pair.essay_b.essay_id,
            metadata_keys.ESSAY_A_METADATA: dict(pair.essay_a.metadata),
            metadata_keys.ESSAY_B_METADATA: dict(pair.essay_b.metadata),
        },
    )
