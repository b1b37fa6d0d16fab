"""Prometheus metrics of the operator (prefix `cj_operator_`).

Base units (seconds, USD); `_total` on counters; labels are bounded sets (phase, outcome,
step, result), never batch or essay ids. Each process builds one set on its own registry, so
tests can build several in one interpreter.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_FAST = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300)


class OperatorMetrics:
    """Every metric the operator exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.batches = Gauge(
            "cj_operator_batches",
            "CJBatches stored (not deleted), by phase (the batch state).",
            ["phase"],
            registry=r,
        )
        self.callbacks = Counter(
            "cj_operator_callbacks_total",
            "Callback events processed, by outcome: success, failure, duplicate, stale "
            "(batch finished or comparison already given up), unknown (correlation id not "
            "ours), malformed (dead-lettered).",
            ["outcome"],
            registry=r,
        )
        self.late_results = Counter(
            "cj_operator_late_results_total",
            "Judge calls that answered a comparison already answered (duplicate) or given up "
            "(stale), counted once per call: not scored, but their cost is in the batch's.",
            ["outcome"],
            registry=r,
        )
        self.late_cost = Counter(
            "cj_operator_late_result_cost_usd_total",
            "Estimated cost (USD) of those late judge calls, by outcome (duplicate, stale).",
            ["outcome"],
            registry=r,
        )
        self.callback_consumer_lag = Gauge(
            "cj_operator_callback_consumer_lag",
            "Callback events on the callback topic not yet read by this operator's consumer "
            "(log end offset minus position, summed over its partitions; records).",
            registry=r,
        )
        self.callback_to_status = Histogram(
            "cj_operator_callback_to_status_latency_seconds",
            "Time from receiving a callback to the status patch that shows it.",
            buckets=_LATENCY,
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "cj_operator_reconcile_duration_seconds",
            "Duration of one reconcile step, by step (advance, callbacks, monitor, status).",
            ["step"],
            buckets=_FAST,
            registry=r,
        )
        self.comparisons_submitted = Counter(
            "cj_operator_comparisons_submitted_total",
            "Comparison requests sent to the provider API, by outcome (queued, refused, "
            "deferred: queue full, sent again later).",
            ["outcome"],
            registry=r,
        )
        self.comparisons_overdue = Counter(
            "cj_operator_comparisons_overdue_total",
            "Comparisons the batch monitor gave up waiting for (callback overdue).",
            registry=r,
        )
        self.fit_duration = Histogram(
            "cj_operator_fit_duration_seconds",
            "Duration of one Bradley-Terry fit.",
            buckets=_FAST,
            registry=r,
        )
        self.status_patches = Counter(
            "cj_operator_status_patches_total",
            "CJBatch status patches, by result (ok, gone, error).",
            ["result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "cj_operator_dead_letters_total",
            "Callback events written to the dead-letter topic (malformed or unrecordable).",
            registry=r,
        )
        self.completion_events = Counter(
            "cj_operator_completion_events_total",
            "CJAssessmentCompletedV1 events published, by state.",
            ["state"],
            registry=r,
        )
        self.provider_errors = Counter(
            "cj_operator_provider_api_errors_total",
            "Failed provider API calls, by kind (unavailable, rejected).",
            ["kind"],
            registry=r,
        )
        self.provider_circuit_open = Gauge(
            "cj_operator_provider_circuit_open",
            "1 while the provider API circuit breaker is open.",
            registry=r,
        )
        self.active = Gauge(
            "cj_operator_active",
            "1 when this replica is the active one (reconciles and consumes callbacks).",
            registry=r,
        )
