"""Bearer-token authentication of the provider API's routes (CJ_API_AUTH_TOKEN)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cj_workers.api.state import api_state
from cj_workers.api.validation import error
from common_core import LLMErrorCode


class UnauthorisedError(Exception):
    """Raised by the auth dependency; rendered as 401 ErrorDetail."""


_bearer = HTTPBearer(auto_error=False)


async def authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When CJ_API_AUTH_TOKEN is set, require it as the bearer token (constant-time compare).

    Raises UnauthorisedError when the token is missing or wrong.
    """
    token = api_state(request).settings.auth_token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise UnauthorisedError


async def unauthorised(_: Request, __: Exception) -> JSONResponse:
    """The exception handler of UnauthorisedError: 401 with an ErrorDetail body."""
    detail = error(
        LLMErrorCode.INVALID_CONFIG,
        "missing or wrong bearer token (Authorization: Bearer <CJ_API_AUTH_TOKEN>)",
        "authenticate",
    )
    return JSONResponse(
        detail.model_dump(mode="json"),
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
