"""Build one judge per provider from the worker's settings."""

from __future__ import annotations

from cj_workers.providers.anthropic_judge import AnthropicJudge
from cj_workers.providers.base import Judge
from cj_workers.providers.mock import MockJudge
from cj_workers.providers.offline import OfflineJudge
from cj_workers.providers.openai_judge import OpenAIJudge
from cj_workers.providers.simulated import SimulatedJudge
from cj_workers.settings import WorkerSettings
from common_core import LLMProviderType


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return get() if callable(get) else None


def build_judges(settings: WorkerSettings) -> dict[LLMProviderType, Judge]:
    """The judge of every provider CJ_ENABLED_PROVIDERS enables (the processor refuses the
    others before looking one up). An enabled provider missing its key or URL still gets a
    judge: it answers each request with an INVALID_CONFIG error event naming the setting."""
    judges: dict[LLMProviderType, Judge] = {
        LLMProviderType.ANTHROPIC: AnthropicJudge(
            _secret(settings.anthropic_api_key), settings.anthropic_base_url
        ),
        LLMProviderType.OPENAI: OpenAIJudge(
            _secret(settings.openai_api_key), settings.openai_base_url, name="openai"
        ),
        LLMProviderType.OPENAI_COMPATIBLE: OpenAIJudge(
            _secret(settings.openai_compatible_api_key),
            settings.openai_compatible_base_url,
            name="openai_compatible",
            require_key=False,
            json_mode=settings.openai_compatible_json_mode,
            token_param="max_tokens",
        ),
        LLMProviderType.OFFLINE: OfflineJudge(),
        LLMProviderType.SIMULATED: SimulatedJudge(
            settings.simulated_discrimination,
            settings.simulated_position_bias,
            settings.simulated_seed,
        ),
        LLMProviderType.MOCK: MockJudge(settings.mock_latency_ms, settings.mock_error_rate),
    }
    return {p: j for p, j in judges.items() if p in settings.enabled_providers}
