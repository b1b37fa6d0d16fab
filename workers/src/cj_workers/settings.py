"""Process settings, read from the environment (one pydantic-settings class per process).

Every field names its environment variable explicitly (``validation_alias``) so the Helm chart
can set exactly these names. Connection variables are unprefixed (``REDIS_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``); everything shared by
the API and the workers is ``CJ_*``; API-only settings are ``CJ_API_*`` and worker-only ones
``CJ_WORKER_*``.

- `ProviderApiSettings`: ``cj-provider-api`` (``python -m cj_workers.api``).
- `WorkerSettings`: ``cj-worker`` (``python -m cj_workers.worker``).
- `TopicBootstrapSettings`: ``cj-bootstrap-topics`` (``python -m cj_workers.bootstrap_topics``).

Redis keys all start with ``CJ_REDIS_KEY_PREFIX``: the request streams are
``<prefix>requests:high`` and ``<prefix>requests:normal`` (consumer group
``CJ_STREAM_CONSUMER_GROUP``), which is what a KEDA redis-streams scaler watches.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common_core import JUSTIFICATION_MAX_CHARS, LLMProviderType, ProcessingEvent


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name."""
    return AliasChoices(name)


class RateLimit(BaseModel):
    """One provider's limits, shared by every worker pod through Redis (0 = unlimited).

    Windows are fixed minutes (UTC); tokens are counted as estimated before a call and
    corrected with the provider's reported usage after it.
    """

    requests_per_minute: int = Field(default=0, ge=0)
    tokens_per_minute: int = Field(default=0, ge=0)


class _Common(BaseSettings):
    """Settings every process of the provider side reads."""

    # hide_input_in_errors: a bad REDIS_URL or key must not print a password in the error.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=False, frozen=True, hide_input_in_errors=True
    )

    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=_env("REDIS_URL"),
        description="Redis URL (redis:// or rediss://) holding the request streams and shared "
        "state (cancelled batches, rate-limit windows, queue-full flag).",
    )
    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of Kafka brokers.",
    )
    redis_max_connections: int = Field(
        default=64,
        ge=2,
        validation_alias=_env("CJ_REDIS_MAX_CONNECTIONS"),
        description="Size of the process's Redis connection pool; callers wait (up to 30 s) "
        "for a free connection rather than fail.",
    )
    redis_key_prefix: str = Field(
        default="cj:provider:",
        validation_alias=_env("CJ_REDIS_KEY_PREFIX"),
        description="Prefix of every Redis key this side uses; API and workers must agree. "
        "Lets several installations (or tests) share one Redis.",
    )
    redis_require_noeviction: bool = Field(
        default=True,
        validation_alias=_env("CJ_REDIS_REQUIRE_NOEVICTION"),
        description="At start-up, read CONFIG GET maxmemory-policy and refuse to start unless "
        "it is noeviction (an evicting Redis drops queued requests). A Redis that refuses "
        "CONFIG is logged as unchecked and accepted. false skips the check.",
    )
    consumer_group: str = Field(
        default="cj-workers",
        min_length=1,
        validation_alias=_env("CJ_STREAM_CONSUMER_GROUP"),
        description="Redis stream consumer group the workers read with (KEDA scales on its lag).",
    )
    service_name: str = Field(
        default="cj-provider",
        min_length=1,
        validation_alias=_env("CJ_SERVICE_NAME"),
        description="`source_service` of published events and `service` of ErrorDetail.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        validation_alias=_env("CJ_LOG_LEVEL"),
        description="Lowest log level written.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        validation_alias=_env("CJ_LOG_FORMAT"),
        description="`json` (one object a line), `console` (coloured), or `auto`: console on "
        "a TTY, JSON otherwise.",
    )
    model_manifest_path: Path | None = Field(
        default=None,
        validation_alias=_env("CJ_MODEL_MANIFEST_PATH"),
        description="Optional JSON file of extra models (a list of objects with provider, "
        "model, input_usd_per_mtok, output_usd_per_mtok) added to the built-in manifest; an "
        "entry with the same provider and model replaces the built-in one.",
    )
    bootstrap_topics_on_start: bool = Field(
        default=True,
        validation_alias=_env("CJ_BOOTSTRAP_TOPICS_ON_START"),
        description="Run the topic bootstrap (CJ_KAFKA_TOPICS) when the process starts.",
    )
    kafka_topics: list[str] = Field(
        default_factory=lambda: [
            ProcessingEvent.LLM_COMPARISON_RESULT.topic_name(),
            ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name(),
        ],
        validation_alias=_env("CJ_KAFKA_TOPICS"),
        description="Topics the bootstrap creates when missing (JSON list). Default: the "
        "comparison-result callback topic and the CJ assessment completion topic.",
    )
    kafka_topic_partitions: int = Field(
        default=3,
        ge=1,
        validation_alias=_env("CJ_KAFKA_TOPIC_PARTITIONS"),
        description="Partitions of each topic the bootstrap creates.",
    )
    kafka_topic_replication_factor: int = Field(
        default=1,
        ge=1,
        validation_alias=_env("CJ_KAFKA_TOPIC_REPLICATION_FACTOR"),
        description="Replication factor of each topic the bootstrap creates.",
    )
    kafka_topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        validation_alias=_env("CJ_KAFKA_TOPIC_MIN_INSYNC_REPLICAS"),
        description="`min.insync.replicas` of created topics; unset leaves the broker default. "
        "With acks=all, 2 of 3 replicas is the usual production choice.",
    )
    kafka_bootstrap_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("CJ_KAFKA_BOOTSTRAP_TIMEOUT_SECONDS"),
        description="How long the start-up topic bootstrap may take before the process goes on "
        "without it (it logs an error; publishing then retries until Kafka answers).",
    )

    @field_validator("kafka_topics")
    @classmethod
    def _topics_legal(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", topic):
                raise ValueError(f"illegal Kafka topic name in CJ_KAFKA_TOPICS: {topic!r}")
        return topics


TEST_PROVIDERS: frozenset[LLMProviderType] = frozenset(
    {LLMProviderType.MOCK, LLMProviderType.SIMULATED}
)
"""Judges for tests and benchmarks only: `mock` (fault and latency injection chosen by the
caller) and `simulated` (verdicts from hidden true scores, unrelated to the essays' text)."""

DEFAULT_ENABLED_PROVIDERS: tuple[LLMProviderType, ...] = tuple(
    p for p in LLMProviderType if p not in TEST_PROVIDERS
)
"""CJ_ENABLED_PROVIDERS when unset: every real judge and `offline`; no test judge."""


class _Judging(_Common):
    """Settings of the processes that accept or run judging requests (API and workers)."""

    enabled_providers: tuple[LLMProviderType, ...] = Field(
        default=DEFAULT_ENABLED_PROVIDERS,
        min_length=1,
        validation_alias=_env("CJ_ENABLED_PROVIDERS"),
        description="Judges this installation offers (JSON list of provider names). The API "
        "refuses a request naming another one (400 INVALID_CONFIG) and a worker answers a "
        "queued one with an INVALID_CONFIG error event. Default: anthropic, openai, "
        "openai_compatible, offline; the test judges `mock` and `simulated` only when listed.",
    )

    def provider_refusal(self, provider: LLMProviderType) -> str | None:
        """`provider_refusal(provider, self.enabled_providers)`."""
        return provider_refusal(provider, self.enabled_providers)


def provider_refusal(provider: LLMProviderType, enabled: Collection[LLMProviderType]) -> str | None:
    """None when `provider` is in `enabled`, else why it is refused (names the setting)."""
    if provider in enabled:
        return None
    listed = ", ".join(p.value for p in enabled)
    why = f"judge {provider.value!r} is not enabled: CJ_ENABLED_PROVIDERS is [{listed}]"
    if provider in TEST_PROVIDERS:
        why += (
            " (mock and simulated are test judges, off unless listed there; chart value "
            "enabledProviders)"
        )
    return why


class TopicBootstrapSettings(_Common):
    """``cj-bootstrap-topics``: create the callback and completion topics, then exit.

    Uses KAFKA_BOOTSTRAP_SERVERS, CJ_KAFKA_TOPICS, CJ_KAFKA_TOPIC_PARTITIONS,
    CJ_KAFKA_TOPIC_REPLICATION_FACTOR, CJ_KAFKA_TOPIC_MIN_INSYNC_REPLICAS and
    CJ_KAFKA_BOOTSTRAP_TIMEOUT_SECONDS (see `_Common`).
    """


class ProviderApiSettings(_Judging):
    """``cj-provider-api``: the HTTP API that validates requests and enqueues them."""

    host: str = Field(
        default="0.0.0.0",
        validation_alias=_env("CJ_API_HOST"),
        description="Address uvicorn binds.",
    )
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias=_env("CJ_API_PORT"),
        description="Port of the API (routes, /healthz, /readyz, /metrics, /docs).",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("CJ_API_AUTH_TOKEN"),
        description="When set, POST routes require `Authorization: Bearer <token>` "
        "(set it from a Secret). Unset: no authentication.",
    )
    callback_topics: list[str] = Field(
        default_factory=lambda: [ProcessingEvent.LLM_COMPARISON_RESULT.topic_name()],
        validation_alias=_env("CJ_API_CALLBACK_TOPICS"),
        description="Callback topics a request may name (JSON list), besides those matching "
        "CJ_API_CALLBACK_TOPIC_PATTERN; any other gives 400 INVALID_CALLBACK_TOPIC. Default: "
        "only the comparison-result topic.",
    )
    callback_topic_pattern: str | None = Field(
        default=None,
        validation_alias=_env("CJ_API_CALLBACK_TOPIC_PATTERN"),
        description="Optional regular expression: a callback_topic matching it in full is "
        "allowed too (unset: only CJ_API_CALLBACK_TOPICS).",
    )
    refused_callback_topics: list[str] = Field(
        default_factory=list,
        validation_alias=_env("CJ_API_REFUSED_CALLBACK_TOPICS"),
        description="Topics never accepted as callback_topic (JSON list), in addition to the "
        "always refused ones: the CJ assessment completion topic and every dead-letter topic "
        "(a name with a `dlq`, `dlt` or `dead-letter` part). Name the operator's own "
        "completion and dead-letter topics here when they are not the defaults.",
    )
    verify_callback_topic_exists: bool = Field(
        default=True,
        validation_alias=_env("CJ_API_VERIFY_CALLBACK_TOPIC_EXISTS"),
        description="Refuse (400 INVALID_CALLBACK_TOPIC) a callback topic that does not exist "
        "on the broker (broker-side auto-creation is expected to be off).",
    )
    topic_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        validation_alias=_env("CJ_API_TOPIC_CACHE_SECONDS"),
        description="How long the list of existing topics is cached; an unknown topic always "
        "triggers one refresh before being refused.",
    )
    max_essay_chars: int = Field(
        default=50_000,
        ge=1,
        validation_alias=_env("CJ_API_MAX_ESSAY_CHARS"),
        description="Longest essay (characters) accepted; longer gives 413 CONTENT_TOO_LONG.",
    )
    max_prompt_chars: int = Field(
        default=20_000,
        ge=1,
        validation_alias=_env("CJ_API_MAX_PROMPT_CHARS"),
        description="Longest user_prompt (assignment + rubric, characters) accepted; longer "
        "gives 413 CONTENT_TOO_LONG.",
    )
    max_metadata_bytes: int = Field(
        default=64 * 1024,
        ge=2,
        validation_alias=_env("CJ_API_MAX_METADATA_BYTES"),
        description="Largest request `metadata` accepted, in bytes of compact UTF-8 JSON; "
        "larger gives 413 CONTENT_TOO_LONG (metadata is echoed in every result event).",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("CJ_API_MAX_BODY_BYTES"),
        description="Largest POST body accepted, in bytes, checked before parsing (one "
        "request or a whole bulk request); larger gives 413 CONTENT_TOO_LONG. The default "
        "admits the operator's bulk requests of 500 comparisons of long essays.",
    )
    queue_high_water: int = Field(
        default=20_000,
        ge=1,
        validation_alias=_env("CJ_API_QUEUE_HIGH_WATER"),
        description="Queue depth (entries queued or in flight, both priorities) at which the "
        "API starts refusing with 503 QUEUE_FULL.",
    )
    queue_low_water: int = Field(
        default=15_000,
        ge=0,
        validation_alias=_env("CJ_API_QUEUE_LOW_WATER"),
        description="Once full, the API accepts again only when the depth is below this.",
    )
    queue_full_retry_after_seconds: int = Field(
        default=30,
        ge=1,
        validation_alias=_env("CJ_API_QUEUE_FULL_RETRY_AFTER_SECONDS"),
        description="Retry-After header (seconds) sent with 503 QUEUE_FULL.",
    )
    request_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        validation_alias=_env("CJ_API_REQUEST_TTL_SECONDS"),
        description="How long a queued request stays worth answering; a worker that takes it "
        "later publishes a PROVIDER_TIMEOUT error event for it instead of judging.",
    )
    cancel_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        validation_alias=_env("CJ_API_CANCEL_TTL_SECONDS"),
        description="How long a batch cancellation mark is kept (should exceed the request TTL).",
    )

    @model_validator(mode="after")
    def _water_marks(self) -> ProviderApiSettings:
        if self.queue_low_water > self.queue_high_water:
            raise ValueError(
                f"CJ_API_QUEUE_LOW_WATER ({self.queue_low_water}) must not exceed "
                f"CJ_API_QUEUE_HIGH_WATER ({self.queue_high_water})"
            )
        try:
            re.compile(self.callback_topic_pattern or "")
        except re.error as exc:
            raise ValueError(f"CJ_API_CALLBACK_TOPIC_PATTERN is not a valid regex: {exc}") from exc
        return self


DEFAULT_MODELS: dict[LLMProviderType, str] = {
    LLMProviderType.ANTHROPIC: "claude-haiku-4-5",
    LLMProviderType.OPENAI: "gpt-4.1-mini",
    LLMProviderType.OPENAI_COMPATIBLE: "llama3.1:8b",
    LLMProviderType.OFFLINE: "offline-quality-v1",
    LLMProviderType.SIMULATED: "simulated-bt",
    LLMProviderType.MOCK: "mock",
}
"""Model per provider when neither the request nor CJ_WORKER_DEFAULT_MODELS names one."""


def _default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(_Judging):
    """``cj-worker``: drains the request streams, calls the judge, publishes on Kafka."""

    consumer_name: str = Field(
        default_factory=_default_consumer_name,
        min_length=1,
        validation_alias=_env("CJ_WORKER_CONSUMER_NAME"),
        description="This worker's consumer name in the group; default `<hostname>-<pid>` "
        "(the pod name in Kubernetes). Must be unique among live workers.",
    )
    concurrency: int = Field(
        default=16,
        ge=1,
        le=1000,
        validation_alias=_env("CJ_WORKER_CONCURRENCY"),
        description="Requests one worker process handles at once.",
    )
    read_block_ms: int = Field(
        default=1000,
        ge=1,
        validation_alias=_env("CJ_WORKER_READ_BLOCK_MS"),
        description="XREADGROUP BLOCK time (ms) when the streams are empty.",
    )
    visibility_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS"),
        description="An entry pending this long without a heartbeat belongs to a dead worker "
        "and is reclaimed (XAUTOCLAIM). Live workers refresh their in-flight entries every "
        "third of this.",
    )
    reclaim_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_RECLAIM_INTERVAL_SECONDS"),
        description="How often a worker looks for entries left pending by dead workers.",
    )
    shutdown_deadline_seconds: float = Field(
        default=25.0,
        ge=0,
        validation_alias=_env("CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS"),
        description="On SIGTERM: stop reading, finish in-flight work for at most this long, "
        "leave the rest pending for another worker. Keep below the pod's grace period.",
    )
    metrics_host: str = Field(
        default="0.0.0.0",
        validation_alias=_env("CJ_WORKER_METRICS_HOST"),
        description="Address of the worker's /metrics, /healthz and /readyz server.",
    )
    metrics_port: int = Field(
        default=9090,
        ge=0,
        le=65535,
        validation_alias=_env("CJ_WORKER_METRICS_PORT"),
        description="Port of the worker's /metrics, /healthz and /readyz server (0 = off).",
    )

    default_provider: LLMProviderType = Field(
        default=LLMProviderType.OFFLINE,
        validation_alias=_env("CJ_WORKER_DEFAULT_PROVIDER"),
        description="Judge used when a request has no provider_override.",
    )
    default_models: dict[LLMProviderType, str] = Field(
        default_factory=lambda: dict(DEFAULT_MODELS),
        validation_alias=_env("CJ_WORKER_DEFAULT_MODELS"),
        description="Model used per provider when a request has no model_override (JSON "
        "object provider -> model; given keys replace the defaults).",
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        validation_alias=_env("CJ_WORKER_TEMPERATURE"),
        description="Sampling temperature when a request has no temperature_override.",
    )
    max_tokens: int = Field(
        default=1024,
        ge=1,
        validation_alias=_env("CJ_WORKER_MAX_TOKENS"),
        description="Answer token limit when a request has no max_tokens_override.",
    )
    justification_max_chars: int = Field(
        default=50,
        ge=1,
        le=JUSTIFICATION_MAX_CHARS,
        validation_alias=_env("CJ_WORKER_JUSTIFICATION_MAX_CHARS"),
        description="Published justifications are truncated to this many characters (<= 500).",
    )

    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("ANTHROPIC_API_KEY"),
        description="API key of the `anthropic` provider (from a Secret).",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=_env("CJ_WORKER_ANTHROPIC_BASE_URL"),
        description="Override of the Anthropic API base URL (proxies, tests).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("OPENAI_API_KEY"),
        description="API key of the `openai` provider (from a Secret).",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=_env("CJ_WORKER_OPENAI_BASE_URL"),
        description="Override of the OpenAI API base URL (proxies, tests).",
    )
    openai_compatible_base_url: str | None = Field(
        default=None,
        validation_alias=_env("CJ_WORKER_OPENAI_COMPATIBLE_BASE_URL"),
        description="Base URL of the `openai_compatible` provider, e.g. "
        "http://ollama:11434/v1 (Ollama, vLLM, LM Studio, OpenRouter). Required to use it.",
    )
    openai_compatible_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("CJ_WORKER_OPENAI_COMPATIBLE_API_KEY"),
        description="API key for the `openai_compatible` endpoint, when it needs one.",
    )
    openai_compatible_json_mode: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        validation_alias=_env("CJ_WORKER_OPENAI_COMPATIBLE_JSON_MODE"),
        description="Structured-output mode for `openai_compatible`: strict `json_schema`, or "
        "`json_object` for servers that lack it (the answer is validated the same way).",
    )

    provider_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_PROVIDER_TIMEOUT_SECONDS"),
        description="Timeout of one call to a provider; exceeded -> retried, then "
        "PROVIDER_TIMEOUT.",
    )
    max_attempts: int = Field(
        default=4,
        ge=1,
        le=20,
        validation_alias=_env("CJ_WORKER_MAX_ATTEMPTS"),
        description="Calls per request for retryable failures (429, 5xx, timeouts, connection "
        "errors), the first included.",
    )
    retry_base_seconds: float = Field(
        default=1.0,
        ge=0,
        validation_alias=_env("CJ_WORKER_RETRY_BASE_SECONDS"),
        description="Backoff before retry n is uniform in [0, base * 2**(n-1)] (full jitter), "
        "capped by CJ_WORKER_RETRY_MAX_SECONDS; a Retry-After header takes precedence.",
    )
    retry_max_seconds: float = Field(
        default=30.0,
        ge=0,
        validation_alias=_env("CJ_WORKER_RETRY_MAX_SECONDS"),
        description="Longest backoff between two attempts without Retry-After.",
    )
    retry_after_max_seconds: float = Field(
        default=120.0,
        ge=0,
        validation_alias=_env("CJ_WORKER_RETRY_AFTER_MAX_SECONDS"),
        description="A Retry-After longer than this is not waited for: the request fails at "
        "once with PROVIDER_RATE_LIMIT (retryable).",
    )
    rate_limits: dict[LLMProviderType, RateLimit] = Field(
        default_factory=dict,
        validation_alias=_env("CJ_WORKER_RATE_LIMITS"),
        description='Per-provider limits shared by all workers, JSON, e.g. {"anthropic": '
        '{"requests_per_minute": 50, "tokens_per_minute": 40000}}. Absent = unlimited.',
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("CJ_WORKER_BREAKER_FAILURE_THRESHOLD"),
        description="Consecutive provider failures (after retries) that open the provider's "
        "circuit; while open, requests fail fast with PROVIDER_UNAVAILABLE (retryable).",
    )
    breaker_reset_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_BREAKER_RESET_SECONDS"),
        description="How long an open circuit stays open before one trial call is let through.",
    )

    simulated_discrimination: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_SIMULATED_DISCRIMINATION"),
        description="`simulated` judge: P(A wins) = logistic(d * (s_A - s_B) + bias); a "
        "smaller d means noisier answers.",
    )
    simulated_position_bias: float = Field(
        default=0.0,
        validation_alias=_env("CJ_WORKER_SIMULATED_POSITION_BIAS"),
        description="`simulated` judge: logit added in favour of the essay in slot A.",
    )
    simulated_seed: int = Field(
        default=0,
        validation_alias=_env("CJ_WORKER_SIMULATED_SEED"),
        description="`simulated` judge: seed mixed with each correlation_id, so answers are "
        "reproducible per request.",
    )
    mock_latency_ms: float = Field(
        default=0.0,
        ge=0,
        validation_alias=_env("CJ_WORKER_MOCK_LATENCY_MS"),
        description="`mock` judge: added latency per call (ms); a model name may override it.",
    )
    mock_error_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        validation_alias=_env("CJ_WORKER_MOCK_ERROR_RATE"),
        description="`mock` judge: probability that a call fails with a 500-like error.",
    )

    publish_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_PUBLISH_TIMEOUT_SECONDS"),
        description="Kafka request timeout of one publish; a failed publish is retried with "
        "backoff while the stream entry stays pending.",
    )
    publish_backoff_max_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("CJ_WORKER_PUBLISH_BACKOFF_MAX_SECONDS"),
        description="Longest wait between two publish attempts while Kafka is unreachable.",
    )
    max_event_bytes: int = Field(
        default=1024 * 1024 - 16 * 1024,
        ge=16 * 1024,
        validation_alias=_env("CJ_WORKER_MAX_EVENT_BYTES"),
        description="Largest result event (serialised envelope, bytes) a worker publishes; "
        "mirror the producer's and broker's limit (Kafka `max.request.size`, default 1 MiB) "
        "minus headroom for the record's overhead. A larger result, or one the broker "
        "refuses as too large, is replaced by a CONTENT_TOO_LONG error event.",
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("CJ_WORKER_MAX_DELIVERIES"),
        description="A stream entry delivered more often than this (its workers died or "
        "failed on it) goes to the dead-letter stream with an INTERNAL_ERROR error event "
        "for its correlation id, instead of being tried again.",
    )
    missing_topic_attempts: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("CJ_WORKER_MISSING_TOPIC_ATTEMPTS"),
        description="Publish attempts for a result whose callback topic does not exist (it was "
        "deleted after the request was accepted) before the entry, with its result, is moved "
        "to the dead-letter stream. Other topics keep flowing meanwhile.",
    )

    @model_validator(mode="after")
    def _default_provider_enabled(self) -> WorkerSettings:
        if self.default_provider not in self.enabled_providers:
            enabled = ", ".join(p.value for p in self.enabled_providers)
            raise ValueError(
                f"CJ_WORKER_DEFAULT_PROVIDER is {self.default_provider.value!r}, which "
                f"CJ_ENABLED_PROVIDERS ({enabled}) does not enable: add it there or choose "
                "an enabled judge"
            )
        return self

    @field_validator("default_models")
    @classmethod
    def _merge_default_models(
        cls, models: dict[LLMProviderType, str]
    ) -> dict[LLMProviderType, str]:
        return {**DEFAULT_MODELS, **models}

    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        validation_alias=_env("CJ_WORKER_KAFKA_LINGER_MS"),
        description="Producer linger.ms: waiting this long batches more events per request.",
    )

    @property
    def judging_bound_seconds(self) -> float:
        """The longest (seconds) from a worker taking a request to its callback being
        published, Kafka answering (the operator's CJ_OPERATOR_QUEUE_JUDGING_SECONDS).

        max_attempts calls of at most provider_timeout_seconds + 5 (the processor's
        wait_for grace), max_attempts - 1 waits of at most max(retry_max_seconds,
        retry_after_max_seconds) (a longer Retry-After fails at once; a shared rate-limit wait
        never outlasts the TTL), and, when a worker dies with it, visibility_timeout_seconds +
        reclaim_interval_seconds until another worker takes it over (then expired: an error
        event at once). Add the request TTL for the bound from submission.
        """
        calls = self.max_attempts * (self.provider_timeout_seconds + 5.0)
        waits = (self.max_attempts - 1) * max(self.retry_max_seconds, self.retry_after_max_seconds)
        return calls + waits + self.visibility_timeout_seconds + self.reclaim_interval_seconds
