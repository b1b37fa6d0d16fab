"""Bulk submission and batch cancellation on the provider API."""

from __future__ import annotations

from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common_core.api import LLMComparisonRequest, LLMQueuedResponse
from common_core.errors import ErrorDetail

BULK_MAX_ITEMS = 1000
"""Most requests one `POST /api/v1/comparisons` takes."""


class LLMComparisonBulkRequest(BaseModel):
    """`POST /api/v1/comparisons` body: up to BULK_MAX_ITEMS comparison requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: list[LLMComparisonRequest] = Field(min_length=1, max_length=BULK_MAX_ITEMS)


class BulkItemOutcome(BaseModel):
    """What happened to one item of a bulk request: queued, or refused with an error."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    correlation_id: UUID
    queued: LLMQueuedResponse | None = None
    error: ErrorDetail | None = None

    @model_validator(mode="after")
    def _queued_xor_error(self) -> Self:
        if (self.queued is None) == (self.error is None):
            raise ValueError("a bulk item outcome is either queued or an error")
        return self


class LLMComparisonBulkResponse(BaseModel):
    """Answer to a bulk request: one outcome per item, in request order.

    Items are independent: a refused item (e.g. CONTENT_TOO_LONG) does not stop the others.
    The HTTP status is 202 when all were queued, 207 when some were refused, and the
    single-request error status when all were refused for the same reason.
    """

    model_config = ConfigDict(frozen=True)

    outcomes: list[BulkItemOutcome]

    @property
    def accepted(self) -> int:
        """Number of items queued."""
        return sum(1 for o in self.outcomes if o.queued is not None)


class BatchCancelResponse(BaseModel):
    """`POST /api/v1/batches/{batch_id}/cancel` answer.

    From `cancelled_at` on, workers skip queued requests whose metadata `batch_id` matches;
    they publish no result for them. The mark expires after `ttl_seconds`.
    """

    model_config = ConfigDict(frozen=True)

    batch_id: str
    cancelled_at: AwareDatetime
    ttl_seconds: int = Field(ge=1)
