"""Prometheus metrics of the provider API and the workers (prefix `cj_provider_`).

Base units (seconds, USD, tokens); `_total` on counters; labels are bounded sets (provider,
status, priority, route), never batch or essay ids. Each process builds its own set on its
own registry, so tests can run several in one interpreter.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DEAD_LETTER_REASONS = ("unreadable", "max_deliveries", "missing_topic", "too_large")
"""The `reason` label values of `cj_provider_dead_letters_total`."""

_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class ApiMetrics:
    """Metrics of `cj-provider-api`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.submissions = Counter(
            "cj_provider_api_submissions_total",
            "Comparison requests received, by outcome (queued or the refusal's error code).",
            ["outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "cj_provider_queue_depth",
            "Requests queued or in flight, by priority (sampled at each submission).",
            ["priority"],
            registry=registry,
        )
        self.cancellations = Counter(
            "cj_provider_api_batch_cancellations_total",
            "Batch cancellations received.",
            registry=registry,
        )


class WorkerMetrics:
    """Metrics of `cj-worker`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "cj_provider_requests_total",
            "Comparisons finished, by provider and status (success or the error code).",
            ["provider", "status"],
            registry=registry,
        )
        self.response_duration = Histogram(
            "cj_provider_response_duration_seconds",
            "Time from taking a request to the judge's final answer (retries included).",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "cj_provider_tokens_total",
            "Tokens reported by providers, by kind (prompt or completion).",
            ["provider", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "cj_provider_cost_usd_total",
            "Estimated spend in USD (manifest prices x reported tokens).",
            ["provider"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "cj_provider_queue_depth",
            "Requests queued or in flight, by priority (sampled every few seconds).",
            ["priority"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "cj_provider_queue_wait_seconds",
            "Time from enqueue to a worker taking the request, by priority.",
            ["priority"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "cj_provider_worker_in_flight",
            "Requests this worker is handling now.",
            registry=registry,
        )
        self.retries = Counter(
            "cj_provider_retries_total",
            "Provider calls retried, by provider and error code.",
            ["provider", "code"],
            registry=registry,
        )
        self.breaker_open = Gauge(
            "cj_provider_circuit_open",
            "1 while the provider's circuit breaker is open in this worker.",
            ["provider"],
            registry=registry,
        )
        self.skipped = Counter(
            "cj_provider_skipped_total",
            "Requests dropped without an event because their batch was cancelled.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "cj_provider_dead_letters_total",
            "Stream entries moved to the dead-letter stream, by reason: unreadable (payload "
            "not a request), max_deliveries (delivered more than CJ_WORKER_MAX_DELIVERIES "
            "times), missing_topic (callback topic deleted), too_large (even the "
            "CONTENT_TOO_LONG error event was refused).",
            ["reason"],
            registry=registry,
        )
        for reason in DEAD_LETTER_REASONS:  # every series from 0, so increase() sees the first
            self.dead_letters.labels(reason)
        self.reclaimed = Counter(
            "cj_provider_reclaimed_total",
            "Entries taken over from workers that stopped heartbeating.",
            registry=registry,
        )
        self.published = Counter(
            "cj_provider_callback_events_published_total",
            "Callback events acknowledged by Kafka, by status (success or error).",
            ["status"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "cj_provider_callback_publish_failures_total",
            "Publish attempts that failed (the entry stays pending and is retried).",
            registry=registry,
        )
        self.publish_duration = Histogram(
            "cj_provider_callback_publish_duration_seconds",
            "Time from the judge's answer to Kafka's acknowledgement of its event.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
