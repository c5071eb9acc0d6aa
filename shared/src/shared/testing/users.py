"""A stand-in for the users service as the other services see it, under a real uvicorn server.

It publishes the JWKS of a ``TokenIssuer`` and answers ``/internal/users/{id}`` and ``/internal/admins``
as users does, for the accounts a test gives it. Knobs make it fail (every call, or one user's next
few) or answer slowly, and it records each internal call, so tests assert on what actually reached it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Header
from starlette.responses import JSONResponse, Response

from shared.testing.servers import serve_in_thread
from shared.testing.tokens import TokenIssuer

SERVICE_TOKEN = "service-token-for-tests"  # noqa: S105 - a test credential
FOREVER = 10**6


@dataclass
class UsersStandIn:
    """The users service with knobs for the failure cases; ``url`` is set while ``serving()``."""

    issuer: TokenIssuer = field(default_factory=TokenIssuer)
    service_token: str = SERVICE_TOKEN
    url: str = ""
    accounts: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    # None: answer normally; otherwise the status every /internal call gets (e.g. 503).
    failing_with: int | None = None
    # A user's lookups left to answer 503 (the users service down, as its callers see it).
    failures_left: dict[uuid.UUID, int] = field(default_factory=dict)
    delay: float = 0.0
    internal_calls: list[dict[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.accounts.clear()
        self.failing_with = None
        self.failures_left.clear()
        self.delay = 0.0
        self.internal_calls.clear()

    def add_user(
        self,
        email: str | None = None,
        full_name: str = "Test User",
        *,
        active: bool = True,
        admin: bool = False,
    ) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.accounts[user_id] = {
            "id": str(user_id),
            "email": email or f"{user_id.hex[:8]}@example.com",
            "full_name": full_name,
            "roles": ["user", "admin"] if admin else ["user"],
            "is_active": active,
        }
        return user_id

    def fail(self, user_id: uuid.UUID, times: int = FOREVER) -> None:
        """Answer 503 for this user the next ``times`` lookups."""
        self.failures_left[user_id] = times

    def heal(self, user_id: uuid.UUID) -> None:
        self.failures_left.pop(user_id, None)

    @property
    def lookups(self) -> list[uuid.UUID]:
        """The users looked up with the right service token, in order (failed lookups included)."""
        return [uuid.UUID(c["user_id"]) for c in self.internal_calls if c["token"] == self.service_token]

    def jwks(self) -> dict[str, Any]:
        return self.issuer.jwks()

    def token(self, user_id: uuid.UUID | str, *, ttl: float = 300, admin: bool = False, **claims: Any) -> str:
        return self.issuer.token(user_id, ttl=ttl, admin=admin, **claims)

    def bearer(self, user_id: uuid.UUID | str, *, admin: bool = False) -> dict[str, str]:
        return self.issuer.bearer(user_id, admin=admin)

    @contextmanager
    def serving(self) -> Iterator[UsersStandIn]:
        """Serve ``app()`` in a thread until the block ends, with ``url`` pointing at it."""
        with serve_in_thread(self.app()) as running:
            self.url = running.url
            try:
                yield self
            finally:
                self.url = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return self.jwks()

        @app.get("/internal/admins")
        async def internal_admins(x_service_token: Annotated[str | None, Header()] = None) -> Response:
            if x_service_token != self.service_token:
                return JSONResponse({"detail": "bad service token"}, status_code=401)
            admins = [a for a in self.accounts.values() if "admin" in a["roles"] and a["is_active"]]
            return JSONResponse({"items": admins})

        @app.get("/internal/users/{user_id}")
        async def internal_user(
            user_id: uuid.UUID,
            x_service_token: Annotated[str | None, Header()] = None,
            x_request_id: Annotated[str | None, Header()] = None,
        ) -> Response:
            self.internal_calls.append(
                {"user_id": str(user_id), "token": x_service_token or "", "request_id": x_request_id or ""}
            )
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failing_with is not None:
                return JSONResponse({"detail": "failing on purpose"}, status_code=self.failing_with)
            if x_service_token != self.service_token:
                return JSONResponse({"detail": "bad service token"}, status_code=401)
            if self.failures_left.get(user_id, 0) > 0:
                self.failures_left[user_id] -= 1
                return JSONResponse({"detail": "down for the test"}, status_code=503)
            if user_id not in self.accounts:
                return JSONResponse({"detail": "no such user"}, status_code=404)
            return JSONResponse(self.accounts[user_id])

        return app
