"""The model manifest: prices, cost estimates, and which models may be used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cj_workers.manifest import BUILTIN_MODELS, ModelManifest
from common_core import LLMProviderType


def test_cost_is_tokens_times_list_price_per_million() -> None:
    manifest = ModelManifest.load()
    cost = manifest.cost_usd(LLMProviderType.ANTHROPIC, "claude-sonnet-4-5", 2000, 100)
    assert cost == pytest.approx((2000 * 3.0 + 100 * 15.0) / 1e6)
    assert manifest.cost_usd(LLMProviderType.OPENAI, "gpt-4.1-mini", 1_000_000, 0) == 0.4


def test_local_judges_and_unlisted_models_cost_nothing() -> None:
    manifest = ModelManifest.load()
    assert manifest.cost_usd(LLMProviderType.OFFLINE, "offline-quality-v1", 10_000, 10) == 0.0
    assert manifest.cost_usd(LLMProviderType.OPENAI_COMPATIBLE, "llama3.1:8b", 10_000, 10) == 0


def test_priced_providers_only_accept_listed_models() -> None:
    manifest = ModelManifest.load()
    assert manifest.check(LLMProviderType.ANTHROPIC, "claude-haiku-4-5") is None
    problem = manifest.check(LLMProviderType.ANTHROPIC, "claude-typo")
    assert problem is not None and "claude-typo" in problem and "claude-haiku-4-5" in problem
    assert manifest.check(LLMProviderType.OPENAI_COMPATIBLE, "any-local-model") is None
    assert manifest.check(LLMProviderType.MOCK, "mock?fail=timeout") is None


def test_every_builtin_model_has_prices_and_a_unique_key() -> None:
    keys = [(m.provider, m.model) for m in BUILTIN_MODELS]
    assert len(keys) == len(set(keys))
    priced = [m for m in BUILTIN_MODELS if m.provider in {LLMProviderType.ANTHROPIC}]
    assert priced and all(m.output_usd_per_mtok > m.input_usd_per_mtok > 0 for m in priced)


def test_extra_manifest_file_adds_and_replaces_models(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            [
                {
                    "provider": "openai",
                    "model": "gpt-new",
                    "input_usd_per_mtok": 1,
                    "output_usd_per_mtok": 2,
                },
                {
                    "provider": "openai",
                    "model": "gpt-4.1",
                    "input_usd_per_mtok": 9,
                    "output_usd_per_mtok": 9,
                },
            ]
        )
    )
    manifest = ModelManifest.load(path)
    assert manifest.check(LLMProviderType.OPENAI, "gpt-new") is None
    assert manifest.cost_usd(LLMProviderType.OPENAI, "gpt-4.1", 1_000_000, 0) == 9


def test_a_bad_manifest_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text('[{"provider": "openai"}]')
    with pytest.raises(ValueError, match=r"models\.json"):
        ModelManifest.load(path)
