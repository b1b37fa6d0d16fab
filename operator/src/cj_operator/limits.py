"""A CJBatch's limits with the operator's defaults filled in (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from cj_operator.spec import CJBatchSpec


@dataclass(frozen=True)
class ResolvedLimits:
    """A spec's limits with the operator's defaults filled in (seconds, shares, USD)."""

    max_retries: int
    min_success_rate: float
    max_cost_usd: float | None
    timeout_seconds: float


def resolve_limits(
    spec: CJBatchSpec, default_timeout_seconds: float, default_min_success_rate: float
) -> ResolvedLimits:
    """spec.limits, unset fields taken from BATCH_TIMEOUT_HOURS / MIN_SUCCESS_RATE_THRESHOLD."""
    limits = spec.limits
    return ResolvedLimits(
        max_retries=limits.max_retries,
        min_success_rate=(
            limits.min_success_rate
            if limits.min_success_rate is not None
            else default_min_success_rate
        ),
        max_cost_usd=limits.max_cost_usd,
        timeout_seconds=limits.timeout_seconds(default_timeout_seconds),
    )
