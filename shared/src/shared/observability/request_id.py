"""Per-request context carried into logs, upstream calls and events."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def accept_request_id(candidate: str | None) -> str:
    """The client's id when it is 1-128 characters of ``[A-Za-z0-9._-]``, a fresh one otherwise."""
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()
