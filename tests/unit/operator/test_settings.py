"""OperatorSettings: defaults, environment names, and clear errors for bad values."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, ValidationError

from cj_operator.settings import OperatorSettings

_OUR_VARS = (
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KUBECONFIG",
    "LLM_PROVIDER_CALLBACK_TOPIC",
    "BATCH_TIMEOUT_HOURS",
    "BATCH_MONITOR_INTERVAL_MINUTES",
    "MIN_SUCCESS_RATE_THRESHOLD",
    "POD_ID",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name in _OUR_VARS or name.startswith("CJ_OPERATOR_"):
            monkeypatch.delenv(name)


def test_platform_defaults() -> None:
    s = OperatorSettings()
    assert s.callback_topic == "huleedu.llm_provider.comparison_result.v1"
    assert s.batch_timeout_hours == 4.0
    assert s.batch_monitor_interval_minutes == 5.0
    assert s.min_success_rate_threshold == 0.8
    assert s.completion_topic == "huleedu.cj_assessment.completed.v1"
    assert s.batch_timeout_seconds == 4 * 3600
    assert s.monitor_interval_seconds == 300


def test_reads_the_documented_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/cj")
    monkeypatch.setenv("BATCH_TIMEOUT_HOURS", "1.5")
    monkeypatch.setenv("CJ_OPERATOR_PROVIDER_API_URL", "http://api:8080/")
    monkeypatch.setenv("CJ_OPERATOR_PROVIDER_API_TOKEN", "s3cret")
    s = OperatorSettings()
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/cj"
    assert s.batch_timeout_hours == 1.5
    assert s.provider_api_url == "http://api:8080"
    assert s.provider_api_token is not None
    assert s.provider_api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_field_names_are_not_read_as_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_TOPIC", "other.topic")
    assert OperatorSettings().callback_topic == "huleedu.llm_provider.comparison_result.v1"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a PostgreSQL URL"),
        ("CJ_OPERATOR_PROVIDER_API_URL", "api:8080", "CJ_OPERATOR_PROVIDER_API_URL"),
        ("MIN_SUCCESS_RATE_THRESHOLD", "1.5", "MIN_SUCCESS_RATE_THRESHOLD"),
        ("LLM_PROVIDER_CALLBACK_TOPIC", "bad topic", "LLM_PROVIDER_CALLBACK_TOPIC"),
        ("CJ_OPERATOR_SUBMIT_CHUNK_SIZE", "5000", "CJ_OPERATOR_SUBMIT_CHUNK_SIZE"),
        (
            "CJ_OPERATOR_DEAD_LETTER_TOPIC",
            "huleedu.llm_provider.comparison_result.v1",
            "must differ",
        ),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        OperatorSettings()
    assert needle in str(err.value)


def test_every_field_is_documented() -> None:
    for name, field in OperatorSettings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert field.validation_alias is not None, f"{name} has no environment variable"


def test_operator_guide_lists_every_variable() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[3] / "docs" / "operator.md").read_text()
    for name, field in OperatorSettings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        variable = alias.choices[0]
        assert isinstance(variable, str)
        assert f"`{variable}`" in guide, f"docs/operator.md does not document {variable} ({name})"


@pytest.mark.parametrize(
    "url",
    ["postgresql+asyncpg://cj:s3cr3t-pw@db:notaport/cj", "mysql://cj:s3cr3t-pw@db/cj"],
)
def test_a_bad_database_url_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ValidationError, match="DATABASE_URL") as raised:
        OperatorSettings()
    assert "s3cr3t-pw" not in str(raised.value)


def test_a_plain_postgres_url_gets_the_asyncpg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://cj:p%40ss@db:5432/cj")
    assert OperatorSettings().database_url == "postgresql+asyncpg://cj:p%40ss@db:5432/cj"


def test_the_overdue_cutoff_is_derived_from_the_queue_bound_by_default() -> None:
    s = OperatorSettings()
    assert s.callback_timeout_minutes is None
    assert s.queue_request_ttl_seconds == 3600
    assert s.queue_judging_seconds == 685
    assert s.queue_bound_seconds == 3600 + 685
    assert s.callback_timeout_seconds == 3600 + 685 + 5 * 60
    assert round(s.callback_timeout_seconds / 60, 1) == 76.4


def test_a_shorter_request_ttl_shortens_the_cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS", "600")
    monkeypatch.setenv("CJ_OPERATOR_QUEUE_JUDGING_SECONDS", "120")
    monkeypatch.setenv("CJ_OPERATOR_CALLBACK_MARGIN_MINUTES", "2")
    assert OperatorSettings().callback_timeout_seconds == 600 + 120 + 120


def test_an_explicit_callback_timeout_overrides_the_derived_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES", "90")
    monkeypatch.setenv("CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS", "60")
    assert OperatorSettings().callback_timeout_seconds == 90 * 60


def test_the_default_judging_bound_is_the_workers_own() -> None:
    """CJ_OPERATOR_QUEUE_JUDGING_SECONDS' default = WorkerSettings' bound with its defaults, and
    the request TTL default = the API's."""
    from cj_workers.settings import ProviderApiSettings, WorkerSettings

    worker = WorkerSettings.model_construct()  # the class defaults, whatever the environment
    api = ProviderApiSettings.model_construct()
    s = OperatorSettings()
    assert s.queue_judging_seconds == worker.judging_bound_seconds
    assert s.queue_request_ttl_seconds == api.request_ttl_seconds


def test_the_workers_judging_bound_follows_their_settings() -> None:
    from cj_workers.settings import WorkerSettings

    w = WorkerSettings.model_construct(
        max_attempts=2,
        provider_timeout_seconds=10.0,
        retry_max_seconds=3.0,
        retry_after_max_seconds=7.0,
        visibility_timeout_seconds=20.0,
        reclaim_interval_seconds=1.0,
    )
    assert w.judging_bound_seconds == 2 * (10 + 5) + 1 * 7 + 20 + 1
