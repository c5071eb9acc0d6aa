"""CORS from the settings' allow-list, with the project's problem+json for a refused preflight."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.problems import problem_response

EXPOSED_HEADERS = ("X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate")


class GatewayCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
            allow_headers=(
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "Last-Event-ID",
            ),
            allow_credentials=True,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Most traffic is not from a browser: skip the header parsing when there is no Origin at all.
        if scope["type"] == "http" and not any(name == b"origin" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette says why in plain text ("Disallowed CORS origin"); keep its status and reason, and
        # send none of the Access-Control-* headers a browser could mistake for a grant.
        reason = bytes(response.body).decode()
        return problem_response(
            response.status_code,
            title="CORS Preflight Refused",
            detail=f"{reason}.",
            type_slug="cors-refused",
            headers={"Vary": "Origin"},
        )
