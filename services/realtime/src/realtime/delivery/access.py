"""Who is connecting and from where they resume: the checks both transports make before streaming."""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers, QueryParams

from realtime.delivery.leases import AccountErased, ConnectionLeases
from realtime.streams.store import DATABASE_ERRORS
from shared.auth.verifier import Principal, TokenVerifier, bearer_token
from shared.errors import Forbidden, TooManyRequests, Unauthorized, UpstreamUnavailable, ValidationFailed
from shared.text import ascii_digits

MAX_OFFSET = 2**63 - 1


def presented_token(headers: Headers, query: QueryParams) -> str | None:
    """``Authorization: Bearer`` first; ``?token=`` for browsers, which cannot set headers on WebSocket."""
    return bearer_token(headers.get("authorization")) or (query.get("token") or None)


async def verify(verifier: TokenVerifier, token: str | None) -> Principal:
    """The caller behind ``token``, or ``Unauthorized`` (missing, malformed, expired, wrong key...)."""
    if token is None:
        raise Unauthorized("An access token is required.", error=None)
    return await verifier.verify(token)


def parse_since(value: str | None, *, source: str) -> int | None:
    """A resume offset: a non-negative integer, or None when the client gave none."""
    if value is None or value.strip() == "":
        return None
    offset = ascii_digits(value.strip())
    if offset is None or offset > MAX_OFFSET:
        raise ValidationFailed(
            f"{source} must be a non-negative integer offset.",
            [
                {
                    "loc": ["query" if source == "since" else "header", source],
                    "msg": "not an offset",
                    "type": "int",
                }
            ],
        )
    return offset


async def take_lease(leases: ConnectionLeases, caller: Principal) -> uuid.UUID:
    """One of the caller's connection slots across replicas; 429 when all are taken, 403 for a user
    deleted while their access token is still valid."""
    try:
        lease = await leases.acquire(caller.user_id)
    except AccountErased as exc:
        raise Forbidden("This account has been deleted.") from exc
    except DATABASE_ERRORS as exc:
        raise UpstreamUnavailable("The stream store cannot be reached.", retry_after=5) from exc
    if lease is None:
        raise TooManyRequests(
            f"At most {leases.limit} open streams per user; close one first.", retry_after=5
        )
    return lease
