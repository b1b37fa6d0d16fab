"""CJ_ENABLED_PROVIDERS: the test judges are off unless listed; the API refuses the others."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cj_operator.engine.submission import refuses_the_judge
from cj_workers.api.validation import HTTP_STATUS, check_request
from cj_workers.callback_topics import CallbackTopicPolicy
from cj_workers.manifest import ModelManifest
from cj_workers.providers.registry import build_judges
from cj_workers.settings import (
    DEFAULT_ENABLED_PROVIDERS,
    ProviderApiSettings,
    WorkerSettings,
)
from common_core import ErrorDetail, LLMComparisonRequest, LLMErrorCode, LLMProviderType

TOPIC = "huleedu.llm_provider.comparison_result.v1"


def request(provider: str | None) -> LLMComparisonRequest:
    overrides = {"provider_override": provider} if provider else {}
    return LLMComparisonRequest.model_validate(
        {
            "user_prompt": "p",
            "essay_a": "a",
            "essay_b": "b",
            "callback_topic": TOPIC,
            "llm_config_overrides": overrides or None,
        }
    )


def check(req: LLMComparisonRequest, settings: ProviderApiSettings) -> ErrorDetail | None:
    return check_request(
        req,
        topic_policy=CallbackTopicPolicy.build([TOPIC], None, []),
        max_essay_chars=100,
        max_prompt_chars=100,
        max_metadata_bytes=1024,
        manifest=ModelManifest.load(None),
        default_provider=None,
        enabled_providers=settings.enabled_providers,
        operation="submit_comparison",
    )


def test_by_default_every_judge_but_mock_and_simulated_is_enabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CJ_ENABLED_PROVIDERS", raising=False)
    expected = {"anthropic", "openai", "openai_compatible", "offline"}
    assert {p.value for p in ProviderApiSettings().enabled_providers} == expected
    assert {p.value for p in WorkerSettings().enabled_providers} == expected
    assert set(DEFAULT_ENABLED_PROVIDERS) == {LLMProviderType(p) for p in expected}


@pytest.mark.parametrize("provider", ["mock", "simulated"])
def test_the_api_refuses_a_test_judge_by_default_naming_the_setting(provider: str) -> None:
    detail = check(request(provider), ProviderApiSettings())
    assert detail is not None
    assert detail.error_code is LLMErrorCode.INVALID_CONFIG
    assert HTTP_STATUS[detail.error_code] == 400
    assert detail.message.startswith(
        f"judge {provider!r} is not enabled: CJ_ENABLED_PROVIDERS is "
        "[anthropic, openai, openai_compatible, offline]"
    )
    assert "test judges" in detail.message and "enabledProviders" in detail.message
    assert detail.details == {
        "field": "llm_config_overrides.provider_override",
        "provider": provider,
    }
    assert not detail.retryable


def test_listed_judges_are_accepted_and_unlisted_real_ones_refused() -> None:
    settings = ProviderApiSettings(CJ_ENABLED_PROVIDERS=["offline", "mock"])
    assert check(request("mock"), settings) is None
    assert check(request("offline"), settings) is None
    assert check(request(None), settings) is None  # the workers' default decides
    refused = check(request("anthropic"), settings)
    assert refused is not None and refused.error_code is LLMErrorCode.INVALID_CONFIG
    assert (
        refused.message
    ) == "judge 'anthropic' is not enabled: CJ_ENABLED_PROVIDERS is [offline, mock]"


def test_bad_setting_values_are_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="CJ_ENABLED_PROVIDERS"):
        ProviderApiSettings(CJ_ENABLED_PROVIDERS=[])
    with pytest.raises(ValidationError, match="CJ_ENABLED_PROVIDERS"):
        ProviderApiSettings(CJ_ENABLED_PROVIDERS=["gemini"])


def test_a_worker_whose_default_judge_is_disabled_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match=r"CJ_WORKER_DEFAULT_PROVIDER is 'mock', which "):
        WorkerSettings(CJ_WORKER_DEFAULT_PROVIDER="mock")
    ok = WorkerSettings(CJ_WORKER_DEFAULT_PROVIDER="mock", CJ_ENABLED_PROVIDERS=["mock"])
    assert ok.default_provider is LLMProviderType.MOCK


def test_the_worker_builds_only_the_enabled_judges() -> None:
    assert set(build_judges(WorkerSettings())) == set(DEFAULT_ENABLED_PROVIDERS)
    judges = build_judges(WorkerSettings(CJ_ENABLED_PROVIDERS=["offline", "simulated"]))
    assert set(judges) == {LLMProviderType.OFFLINE, LLMProviderType.SIMULATED}


def test_the_model_manifest_lists_only_the_enabled_judges() -> None:
    """GET /api/v1/models shows what the API accepts: with the default setting the test
    judges `mock` and `simulated` are not listed, and listing them shows them."""
    manifest = ModelManifest.load(None)
    default = {m.provider for m in manifest.offered(DEFAULT_ENABLED_PROVIDERS)}
    assert LLMProviderType.MOCK not in default and LLMProviderType.SIMULATED not in default
    assert LLMProviderType.ANTHROPIC in default and LLMProviderType.OFFLINE in default
    every = manifest.offered(list(LLMProviderType))
    assert every == manifest.all()
    assert {m.provider for m in manifest.offered([LLMProviderType.MOCK])} == {LLMProviderType.MOCK}


def test_the_operator_reads_both_judge_refusals_as_refusing_the_judge() -> None:
    """A disabled provider and a model the manifest does not know are refusals of the judge
    itself (the operator fails the batch as JudgeRefused); a bad temperature is not."""
    disabled = check(request("mock"), ProviderApiSettings())
    unknown = check(
        LLMComparisonRequest.model_validate(
            request("openai").model_dump()
            | {"llm_config_overrides": {"provider_override": "openai", "model_override": "gpt-0"}}
        ),
        ProviderApiSettings(),
    )
    assert disabled is not None and unknown is not None
    assert unknown.details == {
        "field": "llm_config_overrides.model_override",
        "provider": "openai",
        "model": "gpt-0",
    }
    assert refuses_the_judge(disabled) and refuses_the_judge(unknown)
    other = ErrorDetail(
        error_code=LLMErrorCode.INVALID_CONFIG,
        message="temperature",
        service="api",
        operation="submit_comparison",
        details={"field": "llm_config_overrides.temperature_override"},
    )
    assert not refuses_the_judge(other)
