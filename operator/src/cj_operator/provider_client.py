"""The operator's client of the provider API: bulk submission, batch cancellation, prices.

No polling: results come back only as Kafka callbacks. Calls go through a circuit breaker:
after CJ_OPERATOR_PROVIDER_CIRCUIT_FAILURE_THRESHOLD consecutive faults (connection error,
timeout, 5xx without per-item outcomes) calls are refused locally for
CJ_OPERATOR_PROVIDER_CIRCUIT_RESET_SECONDS, then one trial call decides. `ProviderApi` is the
seam tests replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx
from pydantic import TypeAdapter, ValidationError

from cj_plumbing.breaker import CircuitBreaker
from common_core import (
    BatchCancelResponse,
    ErrorDetail,
    LLMComparisonBulkRequest,
    LLMComparisonBulkResponse,
    LLMComparisonRequest,
    ModelInfo,
)

_MODELS = TypeAdapter(list[ModelInfo])


class ProviderUnavailableError(RuntimeError):
    """The provider API could not be reached or failed (try again later).

    `retry_after` is the server's Retry-After (seconds) or the circuit's remaining open time.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRejectedError(RuntimeError):
    """The provider API refused the whole request with a structured error."""

    def __init__(self, detail: ErrorDetail, status: int) -> None:
        super().__init__(f"{status} {detail.error_code.value}: {detail.message}")
        self.detail = detail
        self.status = status


class ProviderApi(Protocol):
    """The provider API routes the operator uses."""

    async def submit(self, requests: Sequence[LLMComparisonRequest]) -> LLMComparisonBulkResponse:
        """POST /api/v1/comparisons: one outcome per request, in order.

        Raises ProviderUnavailableError (retry later) or ProviderRejectedError.
        """
        ...

    async def cancel(self, batch_uid: str) -> BatchCancelResponse:
        """POST /api/v1/batches/{uid}/cancel: workers skip the batch's queued requests.

        Raises ProviderUnavailableError or ProviderRejectedError.
        """
        ...

    async def models(self) -> list[ModelInfo]:
        """GET /api/v1/models: the workers' model manifest with its prices (USD per MTok).

        Raises ProviderUnavailableError (unreachable, or an answer that is not the list).
        """
        ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpProviderApi:
    """`ProviderApi` over HTTP (httpx), with a bearer token when configured."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout_seconds: float,
        breaker: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout_seconds, transport=transport
        )
        self.breaker = breaker

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        wait = self.breaker.try_acquire()
        if wait is not None:
            raise ProviderUnavailableError("provider API circuit is open", retry_after=wait)
        try:
            response = await self._client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            self.breaker.record_failure()
            raise ProviderUnavailableError(f"provider API unreachable: {exc!r}") from exc
        return response

    def _fail(self, response: httpx.Response) -> Exception:
        """The error for a response without a usable answer (and the breaker updated)."""
        try:
            detail = ErrorDetail.model_validate_json(response.content)
        except ValidationError:
            detail = None
        if response.status_code >= 500 or response.status_code == 429:
            self.breaker.record_failure()
            why = detail.message if detail else response.text[:200]
            return ProviderUnavailableError(
                f"provider API answered {response.status_code}: {why}",
                retry_after=_retry_after(response),
            )
        if response.status_code in (401, 403):
            # The operator's credentials, not the comparisons, are wrong: defer the batch (it
            # resumes once the token is fixed) instead of failing every pair.
            why = detail.message if detail else response.text[:200]
            return ProviderUnavailableError(
                f"provider API refused the operator's credentials ({response.status_code}): "
                f"{why}; check CJ_OPERATOR_PROVIDER_API_TOKEN and the API's token"
            )
        self.breaker.record_success()
        if detail is None:
            return ProviderUnavailableError(
                f"provider API answered {response.status_code} without an error body: "
                f"{response.text[:200]}"
            )
        return ProviderRejectedError(detail, response.status_code)

    async def submit(self, requests: Sequence[LLMComparisonRequest]) -> LLMComparisonBulkResponse:
        body = LLMComparisonBulkRequest(requests=list(requests)).model_dump_json().encode()
        response = await self._post("/api/v1/comparisons", body)
        # 202 and 207 carry outcomes; so does an all-refused answer with the refusal's status.
        try:
            answer = LLMComparisonBulkResponse.model_validate_json(response.content)
        except ValidationError:
            raise self._fail(response) from None
        if len(answer.outcomes) != len(requests):
            self.breaker.record_failure()
            raise ProviderUnavailableError(
                f"provider API answered {len(answer.outcomes)} outcomes for {len(requests)} items"
            )
        self.breaker.record_success()
        return answer

    async def cancel(self, batch_uid: str) -> BatchCancelResponse:
        response = await self._post(f"/api/v1/batches/{batch_uid}/cancel", b"")
        if response.status_code != 200:
            raise self._fail(response)
        self.breaker.record_success()
        return BatchCancelResponse.model_validate_json(response.content)

    async def models(self) -> list[ModelInfo]:
        # Not through the breaker: a price lookup should neither open nor wait for the circuit
        # that guards submissions.
        try:
            response = await self._client.get("/api/v1/models")
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"provider API unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise ProviderUnavailableError(
                f"provider API answered {response.status_code} for /api/v1/models: "
                f"{response.text[:200]}"
            )
        try:
            return _MODELS.validate_json(response.content)
        except ValidationError as exc:
            raise ProviderUnavailableError(
                f"provider API's /api/v1/models is not a list of models: {exc.errors()[:1]}"
            ) from exc
