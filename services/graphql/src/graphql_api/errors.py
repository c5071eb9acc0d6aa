"""Errors as GraphQL clients see them: ``extensions.code`` from a closed list (contract section 7).

Resolvers raise ``ApiError``; ``from_problem`` turns a service's RFC 9457 problem document into one, so
a rule a service enforces reaches the GraphQL client with the same meaning (404 -> NOT_FOUND, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

UNAUTHENTICATED: Final = "UNAUTHENTICATED"
FORBIDDEN: Final = "FORBIDDEN"
NOT_FOUND: Final = "NOT_FOUND"
BAD_USER_INPUT: Final = "BAD_USER_INPUT"
CONFLICT: Final = "CONFLICT"
RATE_LIMITED: Final = "RATE_LIMITED"
UNAVAILABLE: Final = "UNAVAILABLE"
INTERNAL: Final = "INTERNAL"

_BY_STATUS = {
    400: BAD_USER_INPUT,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
    413: BAD_USER_INPUT,
    422: BAD_USER_INPUT,
    429: RATE_LIMITED,
    502: UNAVAILABLE,
    503: UNAVAILABLE,
    504: UNAVAILABLE,
}
# The first segment of a problem's ``loc`` says where the value was; GraphQL has only arguments.
_LOCATIONS = frozenset({"body", "query", "path", "header"})


class ApiError(Exception):
    """A field that could not resolve, for a reason the client may act on."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = {"code": code, **extensions}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_errors(errors: Sequence[Mapping[str, Any]], arguments: Mapping[str, str]) -> list[dict[str, str]]:
    """REST ``loc`` paths as GraphQL argument paths: ``["body", "items", 0, "unit_price_cents"]`` with
    ``{"body": "input"}`` becomes ``input.items.0.unitPriceCents``; ``["query", "cursor"]`` with
    ``{"cursor": "after"}`` becomes ``after``."""
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc") or ()]
        if loc and loc[0] in _LOCATIONS:
            where, loc = loc[0], loc[1:]
            if where in arguments:
                loc = [arguments[where], *loc]
        if loc and loc[0] in arguments:
            loc[0] = arguments[loc[0]]
        field = ".".join(camel(part) for part in loc)
        out.append({"field": field, "message": str(error.get("msg") or "invalid")})
    return out


def from_problem(
    service: str, status: int, body: Any, *, retry_after: str | None, arguments: Mapping[str, str]
) -> ApiError:
    problem = body if isinstance(body, dict) else {}
    code = _BY_STATUS.get(status, INTERNAL if status >= 500 else BAD_USER_INPUT)
    if code in (UNAVAILABLE, INTERNAL):
        # A service's own wording of its failure is not the client's business (nor a leak risk).
        return unavailable(service) if code == UNAVAILABLE else internal()
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    message = detail or problem.get("title") or f"The {service} service refused the request."
    extensions: dict[str, Any] = {}
    errors = problem.get("errors")
    if code == BAD_USER_INPUT and isinstance(errors, list):
        extensions["errors"] = field_errors([e for e in errors if isinstance(e, dict)], arguments)
    if code == RATE_LIMITED and retry_after and re.fullmatch(r"[0-9]{1,6}", retry_after):
        extensions["retryAfter"] = int(retry_after)
    return ApiError(code, str(message), **extensions)


def unavailable(service: str) -> ApiError:
    return ApiError(UNAVAILABLE, f"The {service} service cannot be reached.", service=service)


def internal() -> ApiError:
    return ApiError(INTERNAL, "An unexpected error occurred.")


def bad_input(field: str, message: str) -> ApiError:
    return ApiError(BAD_USER_INPUT, message, errors=[{"field": field, "message": message}])
