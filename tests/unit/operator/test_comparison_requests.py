"""Comparison requests carry the callback topic, the prompt, the essays and the metadata keys."""

from __future__ import annotations

from uuid import uuid4

from cj_operator.accounting import OpenPair
from cj_operator.comparison_requests import EssayRecord, PairToSend, build_request, llm_overrides
from cj_operator.spec import Judge
from common_core import LLMProviderType, metadata_keys


def _pair() -> PairToSend:
    return PairToSend(
        pair_id=42,
        correlation_id=uuid4(),
        round=3,
        attempt=2,
        essay_a=EssayRecord(0, "s1", "Essay one.", {"true_score": 1.5}),
        essay_b=EssayRecord(1, "s2", "Essay two.", {}),
    )


def test_request_fields_and_metadata() -> None:
    pair = _pair()
    judge = Judge(provider=LLMProviderType.SIMULATED, model="sim", temperature=0.0, max_tokens=99)
    request = build_request(
        pair,
        batch_uid="uid-1",
        user_prompt="Assignment:\nWrite.",
        judge=judge,
        callback_topic="huleedu.llm_provider.comparison_result.v1",
    )
    assert request.correlation_id == pair.correlation_id
    assert request.callback_topic == "huleedu.llm_provider.comparison_result.v1"
    assert (request.user_prompt, request.essay_a, request.essay_b) == (
        "Assignment:\nWrite.",
        "Essay one.",
        "Essay two.",
    )
    assert request.llm_config_overrides is not None
    assert request.llm_config_overrides.provider_override == LLMProviderType.SIMULATED
    assert request.llm_config_overrides.max_tokens_override == 99
    assert request.metadata == {
        metadata_keys.BATCH_ID: "uid-1",
        metadata_keys.PAIR_ID: 42,
        metadata_keys.ROUND: 3,
        metadata_keys.ATTEMPT: 2,
        metadata_keys.ESSAY_A_ID: "s1",
        metadata_keys.ESSAY_B_ID: "s2",
        metadata_keys.ESSAY_A_METADATA: {"true_score": 1.5},
        metadata_keys.ESSAY_B_METADATA: {},
    }
    # Metadata is never part of what the judge reads.
    assert "true_score" not in request.user_prompt + request.essay_a + request.essay_b


def test_unset_judge_sends_no_overrides() -> None:
    assert llm_overrides(Judge()) is None
    assert llm_overrides(Judge(temperature=0.5)) is not None


def test_every_request_carries_the_identity_a_verdict_is_checked_against() -> None:
    """What accounting requires a verdict to echo is exactly what every request sends."""
    pair = _pair()
    request = build_request(
        pair, batch_uid="uid-1", user_prompt="p", judge=Judge(), callback_topic="t.cb"
    )
    stored = OpenPair(42, "uid-1", True, False, 2, 3, False, essay_a_id="s1", essay_b_id="s2")
    assert set(metadata_keys.IDENTITY_KEYS) == set(stored.identity())
    assert {k: request.metadata[k] for k in metadata_keys.IDENTITY_KEYS} == stored.identity()
