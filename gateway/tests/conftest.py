"""Real servers for the gateway tests: stand-in upstreams and the gateway itself, each under uvicorn.

Every server runs in its own thread with its own event loop on a free port, so the tests talk HTTP
over TCP exactly as clients do (streaming included), with no monkeypatching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.splice import server_options
from gateway_testing import Recorder, standin_app
from shared.testing.servers import Running, closed_port_url, serve_in_thread
from shared.testing.tokens import TokenIssuer

ALLOWED_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="session")
def keys() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="session")
def users_recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def users_upstream(keys: TokenIssuer, users_recorder: Recorder) -> Iterator[Running]:
    """Stand-in A: users (JWKS, /api/v1/users/*) and realtime (/api/v1/events/stream)."""
    with serve_in_thread(standin_app("users", keys.jwks(), users_recorder)) as running:
        yield running


@pytest.fixture(scope="session")
def orders_upstream(keys: TokenIssuer) -> Iterator[Running]:
    """Stand-in B: orders, whose OpenAPI components collide with A's."""
    with serve_in_thread(standin_app("orders", keys.jwks(), Recorder())) as running:
        yield running


@pytest.fixture(scope="session")
def start_gateway() -> Iterator[Callable[..., Running]]:
    """Start a gateway with the given settings; every one started is stopped at the end of the run."""
    with ExitStack() as stack:

        def start(**settings: Any) -> Running:
            settings.setdefault("environment", "test")
            # The tests are all one client (127.0.0.1); those about rate limits set their own scale.
            settings.setdefault("rate_limit_scale", 1000)
            return stack.enter_context(
                serve_in_thread(create_app(GatewaySettings(**settings)), **server_options())
            )

        yield start


@pytest.fixture(scope="session")
def gateway(start_gateway: Callable[..., Running], users_upstream: Running, orders_upstream: Running) -> str:
    """users and realtime: stand-in A; orders: stand-in B; notification: nothing listens there."""
    running = start_gateway(
        users_url=users_upstream.url,
        orders_url=orders_upstream.url,
        notification_url=closed_port_url(),
        realtime_url=users_upstream.url,
        upstream_timeout=1.0,
        connect_timeout=1.0,
        cors_origins=[ALLOWED_ORIGIN],
    )
    return running.url


@pytest.fixture
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=10.0) as client:
        yield client


@pytest.fixture
def auth(keys: TokenIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token()}"}
