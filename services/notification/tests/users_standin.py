"""A small real stand-in for the users service: its JWKS and /internal/users/{id}, under uvicorn.

It signs access tokens with its own Ed25519 key, knows the accounts a test gives it, and can be told
to answer 503 for a user a number of times (the users service being down, as the consumer sees it).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

INTERNAL_TOKEN = "users-service-token-for-tests"
ISSUER, AUDIENCE, KID = "http://users", "api", "test-key-1"


class UsersStandIn:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.key = Ed25519PrivateKey.generate()
        self.accounts: dict[uuid.UUID, dict[str, Any]] = {}
        self.failures_left: dict[uuid.UUID, int] = {}
        self.lookups: list[uuid.UUID] = []

    def reset(self) -> None:
        self.accounts.clear()
        self.failures_left.clear()
        self.lookups.clear()

    def add(self, email: str, full_name: str = "Test User", *, active: bool = True) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.accounts[user_id] = {
            "id": str(user_id),
            "email": email,
            "full_name": full_name,
            "roles": ["user"],
            "is_active": active,
        }
        return user_id

    def fail(self, user_id: uuid.UUID, times: int = 10**6) -> None:
        """Answer 503 for this user the next ``times`` lookups."""
        self.failures_left[user_id] = times

    def heal(self, user_id: uuid.UUID) -> None:
        self.failures_left.pop(user_id, None)

    def jwks(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"}]}

    def token(self, user_id: uuid.UUID | str, *, ttl: int = 300) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "roles": ["user"],
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": KID})

    def bearer(self, user_id: uuid.UUID | str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return self.jwks()

        @app.get("/internal/users/{user_id}")
        async def internal_user(
            user_id: uuid.UUID, x_service_token: Annotated[str | None, Header()] = None
        ) -> JSONResponse:
            if x_service_token != INTERNAL_TOKEN:
                return JSONResponse({"detail": "bad service token"}, status_code=401)
            self.lookups.append(user_id)
            if self.failures_left.get(user_id, 0) > 0:
                self.failures_left[user_id] -= 1
                return JSONResponse({"detail": "down for the test"}, status_code=503)
            account = self.accounts.get(user_id)
            if account is None:
                return JSONResponse({"detail": "no such user"}, status_code=404)
            return JSONResponse(account)

        return app


@asynccontextmanager
async def running_users_standin(port: int) -> AsyncIterator[UsersStandIn]:
    standin = UsersStandIn(port)
    config = uvicorn.Config(standin.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield standin
    finally:
        server.should_exit = True
        await task
