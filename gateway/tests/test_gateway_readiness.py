"""The gateway's readiness: a users outage does not take the API out of rotation (contract section 3)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from gateway_testing import Recorder, standin_app
from shared.testing.servers import Running, closed_port_url, serve_in_thread
from shared.testing.tokens import TokenIssuer


def test_the_gateway_stays_ready_and_verifies_tokens_while_users_is_down(
    start_gateway: Callable[..., Running], orders_upstream: Running, keys: TokenIssuer
) -> None:
    auth = {"Authorization": f"Bearer {keys.token()}"}
    with serve_in_thread(standin_app("users", keys.jwks(), Recorder())) as users:
        gateway = start_gateway(users_url=users.url, orders_url=orders_upstream.url).url
        with httpx.Client(base_url=gateway, timeout=5) as client:
            assert client.get("/readyz").status_code == 200
            assert client.get("/api/v1/orders", headers=auth).status_code == 200
    # users is gone now.
    with httpx.Client(base_url=gateway, timeout=5) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        fresh = {"Authorization": f"Bearer {keys.token()}"}
        assert client.get("/api/v1/orders", headers=fresh).status_code == 200, "cached keys verify it"
        assert client.get("/api/v1/users/me", headers=fresh).status_code == 503


def test_without_any_key_the_gateway_is_not_ready_and_says_nothing_internal(
    start_gateway: Callable[..., Running],
) -> None:
    users_url = closed_port_url()
    gateway = start_gateway(users_url=users_url).url
    with httpx.Client(base_url=gateway, timeout=5) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"users_jwks": "failed"}
    assert "users_jwks" in ready.json()["detail"]
    port = users_url.rsplit(":", 1)[1]
    for leak in ("127.0.0.1", port, "Error", "jwks.json"):
        assert leak not in ready.text, leak
