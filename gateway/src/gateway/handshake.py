"""Refusing a WebSocket handshake with a problem document, as an HTTP request would be refused."""

from __future__ import annotations

import orjson
from starlette.types import Scope, Send

from shared.errors import AppError
from shared.web.problems import problem_body

_TITLES = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable"}


class Refused(AppError):
    """The realtime service (or the gateway's own token check) refused the handshake with ``status``."""

    def __init__(self, status: int, detail: str | None = None, *, retry_after: str | None = None) -> None:
        super().__init__(detail or "The realtime service refused the connection.")
        self.status = status
        self.title = _TITLES.get(status, "Refused")
        self.type_slug = {401: "unauthorized", 429: "rate-limited"}.get(status, "websocket-refused")
        if status == 401:
            self.headers = {"WWW-Authenticate": "Bearer"}
        elif retry_after is not None and retry_after.isascii() and retry_after.isdigit():
            self.headers = {"Retry-After": retry_after}


async def deny_websocket(scope: Scope, send: Send, error: AppError) -> None:
    """Refuse the handshake (after its ``websocket.connect``) with a problem document where the server
    allows it, else a plain 403."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = orjson.dumps(
        problem_body(
            error.status,
            title=error.title,
            detail=error.detail,
            type_slug=error.type_slug,
            instance=scope["path"],
        )
    )
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
