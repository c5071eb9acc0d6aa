"""RFC 6749 section 5.2 errors: the token and revocation endpoints answer these, not problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

OAuthErrorCode = Literal["invalid_request", "invalid_grant", "unsupported_grant_type", "invalid_client"]

# RFC 6749 section 5.1: token responses (and their errors) must never be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthErrorBody(BaseModel):
    error: OAuthErrorCode
    error_description: str


class OAuthError(Exception):
    def __init__(
        self,
        error: OAuthErrorCode,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error: OAuthErrorCode = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = OAuthErrorBody(error=self.error, error_description=self.description)
        return JSONResponse(body.model_dump(), status_code=self.status, headers={**NO_STORE, **self.headers})


def install_oauth_error_handler(app: FastAPI) -> None:
    async def on_oauth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        return exc.response()

    app.add_exception_handler(OAuthError, on_oauth_error)
