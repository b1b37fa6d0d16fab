"""An ASGI middleware that refuses POST bodies over a byte limit before anything parses them.

The declared `Content-Length` is checked first; a body without one (chunked) is counted as it
arrives and refused as soon as it passes the limit. Either way the answer is 413 with an
ErrorDetail (CONTENT_TOO_LONG) naming the size and the limit, and the route never runs, so
nothing is enqueued.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp as App
from starlette.types import Message, Receive, Scope, Send

from cj_workers.api.validation import error
from common_core import LLMErrorCode

OnRefusal = Callable[[], None]


def too_large_response(size: int, limit: int, path: str, *, at_least: bool) -> JSONResponse:
    """413 CONTENT_TOO_LONG for a body of `size` bytes (`at_least`: more were still coming)."""
    operation = "submit_comparisons" if path.endswith("comparisons") else "submit_comparison"
    amount = f"more than {size}" if at_least else str(size)
    detail = error(
        LLMErrorCode.CONTENT_TOO_LONG,
        f"request body has {amount} bytes; at most {limit} are accepted (CJ_API_MAX_BODY_BYTES)",
        operation,
        field="body",
        length=size,
        limit=limit,
    )
    return JSONResponse(detail.model_dump(mode="json"), status_code=413)


class BodySizeLimit:
    """Wraps an ASGI app: HTTP POST bodies over `limit` bytes get 413 (module docstring).

    `on_refusal` is called once per refused request (the API counts it in its metrics).
    """

    def __init__(self, app: App, limit: int, on_refusal: OnRefusal | None = None) -> None:
        self.app = app
        self.limit = limit
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send, declared, at_least=False)
            return
        # Read the whole body now (bounded), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send, size, at_least=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, size: int, *, at_least: bool
    ) -> None:
        if self.on_refusal is not None:
            self.on_refusal()
        response = too_large_response(size, self.limit, scope.get("path", ""), at_least=at_least)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
