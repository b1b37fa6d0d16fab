"""The model manifest: which models each provider offers and their prices.

Prices are list prices in USD per million tokens (input, output) as published by the vendors
(Anthropic's and OpenAI's pricing pages as of 2025-11; newer models and changed prices
go in a manifest file, CJ_MODEL_MANIFEST_PATH, without a release). Local judges (`offline`,
`simulated`, `mock`) and `openai_compatible` models cost nothing unless a manifest file
(CJ_MODEL_MANIFEST_PATH) says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from pydantic import TypeAdapter

from common_core import LLMProviderType, ModelInfo

__all__ = ["BUILTIN_MODELS", "PRICED_PROVIDERS", "ModelInfo", "ModelManifest"]


def _m(provider: LLMProviderType, model: str, inp: float, out: float, desc: str) -> ModelInfo:
    return ModelInfo(
        provider=provider,
        model=model,
        input_usd_per_mtok=inp,
        output_usd_per_mtok=out,
        description=desc,
    )


_A = LLMProviderType.ANTHROPIC
_O = LLMProviderType.OPENAI

BUILTIN_MODELS: tuple[ModelInfo, ...] = (
    _m(_A, "claude-opus-4-5", 5.0, 25.0, "Anthropic Claude Opus 4.5 (end of life 2027-01-22)"),
    _m(_A, "claude-sonnet-4-5", 3.0, 15.0, "Anthropic Claude Sonnet 4.5 (end of life 2026-11-30)"),
    _m(_A, "claude-haiku-4-5", 1.0, 5.0, "Anthropic Claude Haiku 4.5"),
    _m(_O, "gpt-5", 1.25, 10.0, "OpenAI GPT-5"),
    _m(_O, "gpt-5-mini", 0.25, 2.0, "OpenAI GPT-5 mini"),
    _m(_O, "gpt-5-nano", 0.05, 0.4, "OpenAI GPT-5 nano"),
    _m(_O, "gpt-4.1", 2.0, 8.0, "OpenAI GPT-4.1"),
    _m(_O, "gpt-4.1-mini", 0.4, 1.6, "OpenAI GPT-4.1 mini"),
    _m(_O, "gpt-4.1-nano", 0.1, 0.4, "OpenAI GPT-4.1 nano"),
    _m(_O, "gpt-4o", 2.5, 10.0, "OpenAI GPT-4o"),
    _m(_O, "gpt-4o-mini", 0.15, 0.6, "OpenAI GPT-4o mini"),
    _m(
        LLMProviderType.OFFLINE,
        "offline-quality-v1",
        0.0,
        0.0,
        "Deterministic essay-quality judge, no network (docs/offline-judge.md)",
    ),
    _m(
        LLMProviderType.SIMULATED,
        "simulated-bt",
        0.0,
        0.0,
        "Bradley-Terry draws from true scores in request metadata (benchmarks)",
    ),
    _m(LLMProviderType.MOCK, "mock", 0.0, 0.0, "Latency and fault injection (tests)"),
)

# Providers whose models must be listed in the manifest: their requests cost money, and a
# typo in a model name should be refused at submission rather than discovered by the vendor.
PRICED_PROVIDERS = frozenset({LLMProviderType.ANTHROPIC, LLMProviderType.OPENAI})


class ModelManifest:
    """The models known to this installation, keyed by (provider, model)."""

    def __init__(self, models: tuple[ModelInfo, ...] | list[ModelInfo]) -> None:
        self._models: dict[tuple[LLMProviderType, str], ModelInfo] = {}
        for info in models:
            self._models[(info.provider, info.model)] = info

    @classmethod
    def load(cls, extra_path: Path | None = None) -> ModelManifest:
        """The built-in manifest, plus (replacing on equal keys) the models of `extra_path`.

        Raises `ValueError` naming the file when it is unreadable or not a JSON list of
        ModelInfo objects.
        """
        models = list(BUILTIN_MODELS)
        if extra_path is not None:
            try:
                raw = json.loads(extra_path.read_text(encoding="utf-8"))
                models.extend(TypeAdapter(list[ModelInfo]).validate_python(raw))
            except (OSError, ValueError) as exc:
                raise ValueError(f"bad model manifest {extra_path}: {exc}") from exc
        return cls(models)

    def all(self) -> list[ModelInfo]:
        """Every model, sorted by provider then model name."""
        return sorted(self._models.values(), key=lambda m: (m.provider.value, m.model))

    def offered(self, enabled: Collection[LLMProviderType]) -> list[ModelInfo]:
        """The models of the providers in `enabled` (CJ_ENABLED_PROVIDERS), sorted as `all()`:
        what `GET /api/v1/models` lists, so nobody is shown a judge the API would refuse."""
        return [m for m in self.all() if m.provider in enabled]

    def get(self, provider: LLMProviderType, model: str) -> ModelInfo | None:
        """The entry for `model` of `provider`, or None."""
        return self._models.get((provider, model))

    def check(self, provider: LLMProviderType, model: str) -> str | None:
        """None when `model` may be used with `provider`, else a message saying why not.

        Models of `anthropic` and `openai` must be listed; other providers accept any name.
        """
        if provider not in PRICED_PROVIDERS or (provider, model) in self._models:
            return None
        known = ", ".join(m.model for m in self.all() if m.provider == provider)
        return (
            f"model {model!r} is not in the manifest for provider {provider.value!r} "
            f"(known: {known}); add it with CJ_MODEL_MANIFEST_PATH"
        )

    def cost_usd(
        self, provider: LLMProviderType, model: str, prompt_tokens: int, completion_tokens: int
    ) -> float:
        """USD cost of one call: tokens x list price / 1e6 (0 for unlisted models).

        e.g. claude-sonnet-4-5 at 3/15 USD per MTok, 2,000 in + 100 out -> 0.0075 USD.
        """
        info = self._models.get((provider, model))
        if info is None:
            return 0.0
        return (
            prompt_tokens * info.input_usd_per_mtok + completion_tokens * info.output_usd_per_mtok
        ) / 1_000_000
