"""The operator process's settings, read from the environment (one pydantic-settings class).

Every field names its environment variable explicitly (``validation_alias``) so the Helm chart
sets exactly these names. Connection variables are unprefixed (``DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``KUBECONFIG``); the four settings inherited from the platform's
CJ assessment service keep their names (``LLM_PROVIDER_CALLBACK_TOPIC``,
``BATCH_TIMEOUT_HOURS``, ``BATCH_MONITOR_INTERVAL_MINUTES``, ``MIN_SUCCESS_RATE_THRESHOLD``);
everything else is ``CJ_OPERATOR_*``.

The process is ``kopf run -m cj_operator.handlers`` (flags in docs/operator.md); the
migrations are ``cj-operator-migrate`` (also run at start-up when
``CJ_OPERATOR_MIGRATE_ON_START`` is true).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from cj_operator.evidence import COMPARISONS_DATA_BUDGET
from common_core import BULK_MAX_ITEMS, KAFKA_TOPIC_PATTERN, ProcessingEvent

QUEUE_JUDGING_SECONDS = 4 * (60.0 + 5.0) + 3 * max(30.0, 120.0) + 60.0 + 5.0
"""The workers' judging bound with their default settings (685 s; cj_workers.settings:
4 attempts of a 60 s provider timeout + 5 s grace, 3 waits of at most 120 s (Retry-After),
a 60 s visibility timeout and a 5 s reclaim interval). A unit test checks it against
WorkerSettings().judging_bound_seconds."""


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL with the asyncpg driver (postgresql:// and postgres:// get it).

    Raises ValueError naming DATABASE_URL and the problem, never the URL (it holds the
    password), for another scheme or a URL that cannot be parsed.
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+asyncpg://" + url.removeprefix(plain)
    if not url.startswith("postgresql+asyncpg://"):
        raise ValueError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql+asyncpg://...), "
            f"got scheme {url.split('://', 1)[0]!r}"
        )
    try:
        parsed = make_url(url)
    except (ValueError, ArgumentError) as exc:
        raise ValueError(
            f"DATABASE_URL cannot be parsed ({type(exc).__name__}): check the port is a "
            "number and special characters in the password are percent-encoded"
        ) from None
    return parsed.render_as_string(hide_password=False)


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name."""
    return AliasChoices(name)


class OperatorSettings(BaseSettings):
    """Settings of the operator process (``kopf run -m cj_operator.handlers``).

    Also read by ``cj-operator-migrate`` (which only needs ``DATABASE_URL``).
    Raises ``pydantic.ValidationError`` naming the variable when a value is invalid.
    """

    # hide_input_in_errors: a bad DATABASE_URL must not print its password in the error.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=False, frozen=True, hide_input_in_errors=True
    )

    # --- connections -------------------------------------------------------------------
    database_url: str = Field(
        default="postgresql+asyncpg://cj:cj@localhost:5432/cj",
        validation_alias=_env("DATABASE_URL"),
        description="SQLAlchemy URL of the operator's PostgreSQL database; the driver must be "
        "asyncpg (postgresql+asyncpg://user:password@host:port/db). Set the password from a "
        "Secret. A plain postgresql:// URL is accepted and given the asyncpg driver.",
    )
    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of Kafka brokers (callbacks in, "
        "completion events and dead letters out).",
    )
    kubeconfig: Path | None = Field(
        default=None,
        validation_alias=_env("KUBECONFIG"),
        description="Kubeconfig file for running outside a cluster. Unset: the in-cluster "
        "service account is used (kopf and the operator's own API calls alike).",
    )

    # --- the platform's CJ settings (names kept) ------------------------------------------
    callback_topic: str = Field(
        default=ProcessingEvent.LLM_COMPARISON_RESULT.topic_name(),
        pattern=KAFKA_TOPIC_PATTERN,
        validation_alias=_env("LLM_PROVIDER_CALLBACK_TOPIC"),
        description="Kafka topic every comparison request names as its callback_topic, and "
        "the topic the operator's callback consumer reads.",
    )
    batch_timeout_hours: float = Field(
        default=4.0,
        gt=0,
        validation_alias=_env("BATCH_TIMEOUT_HOURS"),
        description="Default of a CJBatch's spec.limits.timeout (hours from creation): then "
        "the batch is scored when at least spec.limits.minSuccessRate of its comparisons "
        "succeeded, else it is FAILED.",
    )
    batch_monitor_interval_minutes: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("BATCH_MONITOR_INTERVAL_MINUTES"),
        description="How often the batch monitor (one task per operator) re-submits "
        "comparisons whose callback is overdue and applies batch timeouts.",
    )
    phase_gauge_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_PHASE_GAUGE_INTERVAL_SECONDS"),
        description="How often (seconds) the batches-by-phase gauge (cj_operator_batches) is "
        "counted again from the database.",
    )
    min_success_rate_threshold: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        validation_alias=_env("MIN_SUCCESS_RATE_THRESHOLD"),
        description="Default of spec.limits.minSuccessRate: the fraction of comparisons that "
        "must end with a winner (after retries) for a batch to complete rather than fail.",
    )

    # --- provider API -------------------------------------------------------------------
    provider_api_url: str = Field(
        default="http://cj-provider-api:8080",
        validation_alias=_env("CJ_OPERATOR_PROVIDER_API_URL"),
        description="Base URL of the provider API (cj-provider-api); the operator POSTs "
        "{url}/api/v1/comparisons and {url}/api/v1/batches/{uid}/cancel.",
    )
    provider_api_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("CJ_OPERATOR_PROVIDER_API_TOKEN"),
        description="Bearer token sent to the provider API (its CJ_API_AUTH_TOKEN; set it "
        "from a Secret). Unset: no Authorization header. Never logged.",
    )
    provider_api_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_PROVIDER_API_TIMEOUT_SECONDS"),
        description="Timeout (seconds) of one HTTP call to the provider API.",
    )
    provider_circuit_failure_threshold: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_PROVIDER_CIRCUIT_FAILURE_THRESHOLD"),
        description="Consecutive failed calls (connection error, timeout, 5xx) that open the "
        "provider API circuit breaker; while open, submissions wait instead of calling.",
    )
    provider_circuit_reset_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_PROVIDER_CIRCUIT_RESET_SECONDS"),
        description="How long (seconds) the circuit stays open before one trial call.",
    )
    submit_chunk_size: int = Field(
        default=500,
        ge=1,
        le=BULK_MAX_ITEMS,
        validation_alias=_env("CJ_OPERATOR_SUBMIT_CHUNK_SIZE"),
        description=f"Comparison requests per bulk POST (at most {BULK_MAX_ITEMS}, the API's "
        "limit).",
    )

    # --- Kafka ----------------------------------------------------------------------------
    consumer_group: str = Field(
        default="cj-operator",
        min_length=1,
        validation_alias=_env("CJ_OPERATOR_CONSUMER_GROUP"),
        description="Kafka consumer group of the callback consumer (offsets are committed "
        "only after the database transaction that recorded the callbacks).",
    )
    callback_max_records: int = Field(
        default=500,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_CALLBACK_MAX_RECORDS"),
        description="Most callback events taken per poll; each poll is recorded in one "
        "database transaction, each batch's counters updated once per poll.",
    )
    callback_poll_timeout_ms: int = Field(
        default=1000,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_CALLBACK_POLL_TIMEOUT_MS"),
        description="How long (ms) one poll waits for callback events when none are ready.",
    )
    dead_letter_topic: str = Field(
        default=ProcessingEvent.LLM_COMPARISON_RESULT.topic_name() + ".dlq",
        pattern=KAFKA_TOPIC_PATTERN,
        validation_alias=_env("CJ_OPERATOR_DEAD_LETTER_TOPIC"),
        description="Topic that receives malformed callback events verbatim (headers say "
        "why), so the consumer can go on without losing them.",
    )
    completion_topic: str = Field(
        default=ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name(),
        pattern=KAFKA_TOPIC_PATTERN,
        validation_alias=_env("CJ_OPERATOR_COMPLETION_TOPIC"),
        description="Topic of the CJAssessmentCompletedV1 event published once per batch.",
    )
    create_topics: bool = Field(
        default=True,
        validation_alias=_env("CJ_OPERATOR_CREATE_TOPICS"),
        description="At start-up, create the callback, completion and dead-letter topics "
        "when missing (broker-side auto-creation is expected to be off).",
    )
    topic_partitions: int = Field(
        default=3,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_TOPIC_PARTITIONS"),
        description="Partitions of each topic the operator creates.",
    )
    topic_replication_factor: int = Field(
        default=1,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_TOPIC_REPLICATION_FACTOR"),
        description="Replication factor of each topic the operator creates.",
    )

    # --- batch engine -----------------------------------------------------------------------
    queue_request_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS"),
        description="The provider API's request TTL (its CJ_API_REQUEST_TTL_SECONDS; the "
        "chart sets both from queue.requestTtlSeconds): the longest a request waits in the "
        "queue before a worker answers it with a timeout error instead of judging. Part of "
        "the derived overdue cutoff.",
    )
    queue_judging_seconds: float = Field(
        default=QUEUE_JUDGING_SECONDS,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_QUEUE_JUDGING_SECONDS"),
        description="The longest a worker holds a request once taken before its callback is "
        "published: CJ_WORKER_MAX_ATTEMPTS x (CJ_WORKER_PROVIDER_TIMEOUT_SECONDS + 5) + "
        "(attempts - 1) x max(CJ_WORKER_RETRY_MAX_SECONDS, CJ_WORKER_RETRY_AFTER_MAX_SECONDS) "
        "+ CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS + CJ_WORKER_RECLAIM_INTERVAL_SECONDS "
        "(WorkerSettings.judging_bound_seconds). The default is that of the workers' defaults, "
        "4 x 65 + 3 x 120 + 60 + 5 = 685 s; raise it with those settings. Part of the derived "
        "overdue cutoff.",
    )
    callback_margin_minutes: float = Field(
        default=5.0,
        ge=0,
        validation_alias=_env("CJ_OPERATOR_CALLBACK_MARGIN_MINUTES"),
        description="Added to the queue's bound (request TTL + judging) in the derived "
        "overdue cutoff: Kafka delivery, the operator's poll, clock differences.",
    )
    callback_timeout_minutes: float | None = Field(
        default=None,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES"),
        description="A submitted comparison without a callback after this long is overdue: "
        "the batch monitor counts it failed and re-submits it (new correlation id, attempt+1) "
        "within spec.limits.maxRetries. Unset: derived, CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS "
        "+ CJ_OPERATOR_QUEUE_JUDGING_SECONDS + CJ_OPERATOR_CALLBACK_MARGIN_MINUTES (76.4 min "
        "with the defaults), the latest a callback can come for a request that was not lost. "
        "Set: an explicit override (below that bound, live requests are re-submitted too and "
        "their late answers count as stale).",
    )
    status_patch_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS"),
        description="Least time (seconds) between two status patches of one CJBatch; "
        "changes in between are coalesced into one patch.",
    )
    fit_alpha: float | None = Field(
        default=None,
        gt=0,
        validation_alias=_env("CJ_OPERATOR_FIT_ALPHA"),
        description="Regularisation of the Bradley-Terry fit (choix alpha). Unset: the "
        "scoring module's default.",
    )
    retry_backoff_seconds: float = Field(
        default=2.0,
        ge=0,
        validation_alias=_env("CJ_OPERATOR_RETRY_BACKOFF_SECONDS"),
        description="Wait before re-submitting a failed comparison: this many seconds after "
        "its first attempt, doubling with each attempt up to 300 s; an error event's "
        "details.retry_after_seconds (the provider's Retry-After) is honoured instead, "
        "clamped to 1-300 s. 0 retries at once.",
    )
    retention_on_delete: Literal["keep", "delete"] = Field(
        default="keep",
        validation_alias=_env("CJ_OPERATOR_RETENTION_ON_DELETE"),
        description="What happens to a deleted CJBatch's rows in PostgreSQL: `keep` (the "
        "batch, essays, comparisons and scores stay, marked deleted) or `delete` (removed, "
        "cascading).",
    )
    comparisons_max_bytes: int = Field(
        default=COMPARISONS_DATA_BUDGET,
        ge=0,
        le=COMPARISONS_DATA_BUDGET,
        validation_alias=_env("CJ_OPERATOR_COMPARISONS_MAX_BYTES"),
        description="Largest comparisons.csv (bytes) written to a finished batch's "
        "`<name>-comparisons` ConfigMap (at most 921600: a Kubernetes object is at most 1 MiB). "
        "Larger: none is written, condition ComparisonsWritten=False says so, and the "
        "comparisons stay in PostgreSQL (cjctl comparisons reads them with DATABASE_URL). 0 "
        "never writes it.",
    )
    migrate_on_start: bool = Field(
        default=True,
        validation_alias=_env("CJ_OPERATOR_MIGRATE_ON_START"),
        description="Run the database migrations (alembic upgrade head, under a PostgreSQL "
        "advisory lock so replicas do not race) when the operator starts. Set false when a "
        "Job runs `cj-operator-migrate` instead.",
    )

    # --- peering, observability -------------------------------------------------------------
    peering_name: str = Field(
        default="cj-operator",
        min_length=1,
        validation_alias=_env("CJ_OPERATOR_PEERING_NAME"),
        description="Name of the kopf peering object (a ClusterKopfPeering, whichever "
        "namespaces the operator watches) the replicas coordinate through, unless --peering "
        "is given or the operator runs --standalone. Standby replicas pause; only the active "
        "one reconciles and consumes callbacks.",
    )
    peering_lifetime_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        validation_alias=_env("CJ_OPERATOR_PEERING_LIFETIME_SECONDS"),
        description="How long (seconds) a replica that stopped announcing itself still counts "
        "as alive in the peering object (kopf's peering lifetime; each replica announces "
        "itself 5-10 s more often). A standby takes over at most this long, plus its "
        "peering poll (a quarter of it, at most 5 s), after the active replica dies; "
        "shorter means faster fail-over and more API calls.",
    )
    peering_priority: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        validation_alias=_env("CJ_OPERATOR_PEERING_PRIORITY"),
        description="kopf peering priority of this replica (highest live one is active). "
        "Unset: a random value from 1 to 1,000,000, so replicas of one Deployment differ "
        "(kopf pauses every replica when two share the highest priority).",
    )
    pod_id: str | None = Field(
        default=None,
        validation_alias=_env("POD_ID"),
        description="This replica's peering identity (set it to the pod name from the "
        "downward API). Required with peering; kopf reads the same variable.",
    )
    metrics_host: str = Field(
        default="0.0.0.0",
        validation_alias=_env("CJ_OPERATOR_METRICS_HOST"),
        description="Address of the Prometheus /metrics server.",
    )
    metrics_port: int = Field(
        default=9090,
        ge=0,
        le=65535,
        validation_alias=_env("CJ_OPERATOR_METRICS_PORT"),
        description="Port of the Prometheus /metrics server (0 = off). Liveness is kopf's "
        "own endpoint (--liveness=http://0.0.0.0:8080/healthz).",
    )
    service_name: str = Field(
        default="cj-operator",
        min_length=1,
        validation_alias=_env("CJ_OPERATOR_SERVICE_NAME"),
        description="`source_service` of the events the operator publishes.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        validation_alias=_env("CJ_OPERATOR_LOG_LEVEL"),
        description="Lowest log level written.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        validation_alias=_env("CJ_OPERATOR_LOG_FORMAT"),
        description="`json` (one object a line), `console`, or `auto`: console on a TTY, "
        "JSON otherwise.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        validation_alias=_env("CJ_OPERATOR_DB_POOL_SIZE"),
        description="Connections the operator keeps open to PostgreSQL (as many again are "
        "opened for bursts and closed after use). The default covers the engine's 4 workers, "
        "8 concurrent status patches, the callback consumer and the monitor.",
    )

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        return asyncpg_url(url)

    @field_validator("provider_api_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"CJ_OPERATOR_PROVIDER_API_URL must be http(s)://..., got {url!r}")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _distinct_topics(self) -> OperatorSettings:
        if self.dead_letter_topic == self.callback_topic:
            raise ValueError(
                "CJ_OPERATOR_DEAD_LETTER_TOPIC must differ from LLM_PROVIDER_CALLBACK_TOPIC"
            )
        return self

    @property
    def batch_timeout_seconds(self) -> float:
        """BATCH_TIMEOUT_HOURS in seconds."""
        return self.batch_timeout_hours * 3600.0

    @property
    def monitor_interval_seconds(self) -> float:
        """BATCH_MONITOR_INTERVAL_MINUTES in seconds."""
        return self.batch_monitor_interval_minutes * 60.0

    @property
    def queue_bound_seconds(self) -> float:
        """The latest (seconds after submission) a callback can come for a request the
        provider side did not lose: request TTL + the workers' judging bound."""
        return self.queue_request_ttl_seconds + self.queue_judging_seconds

    @property
    def callback_timeout_seconds(self) -> float:
        """The overdue cutoff in seconds: CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES when set, else
        `queue_bound_seconds` + CJ_OPERATOR_CALLBACK_MARGIN_MINUTES (docs/operator.md)."""
        if self.callback_timeout_minutes is not None:
            return self.callback_timeout_minutes * 60.0
        return self.queue_bound_seconds + self.callback_margin_minutes * 60.0
