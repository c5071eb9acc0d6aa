"""Test support (like ``shared.testing.fixtures``): a stand-in users service under a real uvicorn server.

The stand-in publishes a JWKS for a test Ed25519 key, answers ``/internal/users/{id}`` as users
does, can be told to fail or to be slow, and records what reached it. Tests mint access tokens with
its key, so orders verifies them exactly as it verifies real ones.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Header
from jwt.algorithms import OKPAlgorithm
from starlette.responses import JSONResponse, Response

KID = "orders-test-key"
ISSUER = "http://users"
AUDIENCE = "api"
SERVICE_TOKEN = "service-token-for-tests"  # noqa: S105 - a test credential


@dataclass
class UsersStandIn:
    """The users service as orders sees it, with knobs for the failure cases."""

    service_token: str = SERVICE_TOKEN
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    url: str = ""
    accounts: dict[uuid.UUID, bool] = field(default_factory=dict)
    # None: answer normally; otherwise the status every /internal call gets (e.g. 503).
    failing_with: int | None = None
    delay: float = 0.0
    internal_calls: list[dict[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.accounts.clear()
        self.failing_with = None
        self.delay = 0.0
        self.internal_calls.clear()

    def add_user(self, *, active: bool = True) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.accounts[user_id] = active
        return user_id

    def jwks(self) -> dict[str, Any]:
        public = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        public.update({"kid": KID, "alg": "EdDSA", "use": "sig"})
        return {"keys": [public]}

    def token(self, user_id: uuid.UUID, *, admin: bool = False, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "roles": ["user", "admin"] if admin else ["user"],
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="EdDSA", headers={"kid": KID})

    def bearer(self, user_id: uuid.UUID, *, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, admin=admin)}"}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return self.jwks()

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
            if user_id not in self.accounts:
                return JSONResponse({"detail": "no such user"}, status_code=404)
            return JSONResponse(
                {
                    "id": str(user_id),
                    "email": f"{user_id.hex[:8]}@example.com",
                    "full_name": "Test User",
                    "roles": ["user"],
                    "is_active": self.accounts[user_id],
                }
            )

        return app


def free_port_url() -> str:
    """A URL on which nothing listens, so connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port, in a thread with its own loop; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the stand-in server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
