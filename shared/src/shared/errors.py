"""One error hierarchy: every error a component raises on purpose (rendered by shared.web.problems)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class AppError(Exception):
    """Base of every error a service raises on purpose; rendered as problem+json."""

    status: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})


class BadRequest(AppError):
    status, title, type_slug = 400, "Bad Request", "bad-request"


class Unauthorized(AppError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, *, error: str | None = "invalid_token") -> None:
        # RFC 6750: no error code when the request carried no credentials at all.
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(AppError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(AppError):
    status, title, type_slug = 404, "Not Found", "not-found"


class Conflict(AppError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(AppError):
    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class ValidationFailed(AppError):
    status, title, type_slug = 422, "Unprocessable Content", "validation"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.errors = [dict(e) for e in errors]


class TooManyRequests(AppError):
    status, title, type_slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class UpstreamUnavailable(AppError):
    """A service this one depends on cannot answer; the client may retry later."""

    status, title, type_slug = 503, "Service Unavailable", "upstream-unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class BadGateway(AppError):
    status, title, type_slug = 502, "Bad Gateway", "bad-gateway"


class GatewayTimeout(AppError):
    status, title, type_slug = 504, "Gateway Timeout", "gateway-timeout"
