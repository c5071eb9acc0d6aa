"""The routing table: what is public, what needs a token, and what is never forwarded."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.routing import RoutingTable, is_denied
from gateway.settings import DEFAULT_ROUTES, GatewaySettings
from gateway_testing import Recorder

URLS = {name: f"http://{name}:1" for name in ("users", "orders", "notification", "realtime", "graphql")}


@pytest.fixture
def table() -> RoutingTable:
    return RoutingTable(DEFAULT_ROUTES, URLS)


@pytest.mark.parametrize(
    ("path", "template", "upstream", "public"),
    [
        ("/api/v1/auth/register", "/api/v1/auth/register", "users", True),
        ("/api/v1/auth/token", "/api/v1/auth/token", "users", True),
        ("/api/v1/auth/revoke", "/api/v1/auth/revoke", "users", True),
        ("/api/v1/auth/sessions", "/api/v1/auth/*", "users", False),
        ("/.well-known/jwks.json", "/.well-known/jwks.json", "users", True),
        ("/api/v1/users", "/api/v1/users/*", "users", False),
        ("/api/v1/users/me", "/api/v1/users/*", "users", False),
        ("/api/v1/orders/0b6f/pay", "/api/v1/orders/*", "orders", False),
        ("/api/v1/notifications/unread-count", "/api/v1/notifications/*", "notification", False),
        ("/api/v1/events/stream", "/api/v1/events/*", "realtime", False),
        ("/ws", "/ws", "realtime", False),
        ("/api/v1/admin/jobs/users", "/api/v1/admin/jobs/users/*", "users", False),
        ("/api/v1/admin/jobs/orders/purge-outbox/run", "/api/v1/admin/jobs/orders/*", "orders", False),
        (
            "/api/v1/admin/jobs/notification/daily-report/runs",
            "/api/v1/admin/jobs/notification/*",
            "notification",
            False,
        ),
        (
            "/api/v1/admin/jobs/realtime/trim-streams/pause",
            "/api/v1/admin/jobs/realtime/*",
            "realtime",
            False,
        ),
        ("/graphql", "/graphql", "graphql", False),
        ("/api/v1/rooms", "/api/v1/rooms/*", "realtime", False),
        ("/api/v1/rooms/0b6f/presence", "/api/v1/rooms/*", "realtime", False),
        ("/api/v1/broadcasts", "/api/v1/broadcasts", "realtime", False),
    ],
)
def test_routes_match_the_contract(
    table: RoutingTable, path: str, template: str, upstream: str, public: bool
) -> None:
    route = table.match(path)
    assert route is not None
    assert (route.template, route.upstream, route.public) == (template, upstream, public)
    assert route.base_url == URLS[upstream]


@pytest.mark.parametrize(
    "path",
    [
        "/internal/users/1",
        "/api/v1/users/internal/x",
        "/api/v1/users/../internal/users/1",
        "/api/v1/users/./me",
        "/api/v1/users/healthz",
        "/api/v1/orders/metrics",
        "/api/v1/notifications/readyz",
        "/api/v1/usersfoo",
        "/api/v1/admin/jobs",
        "/api/v1/admin/jobs/gateway",
        "/api/v1/admin/jobs/ordersx/purge-outbox/run",
        "/api/v1/admin/jobs/orders/metrics",
        "/healthz",
        "/metrics",
        "/",
    ],
)
def test_unrouted_and_denied_paths_match_nothing(table: RoutingTable, path: str) -> None:
    assert table.match(path) is None


def test_denial_does_not_catch_look_alikes() -> None:
    assert not is_denied("/.well-known/jwks.json")
    assert not is_denied("/api/v1/orders/internals-of-x/items")


def test_settings_read_the_launchers_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    monkeypatch.setenv("USERS_URL", "http://users.local:8001/")
    monkeypatch.setenv("GATEWAY_ORDERS_URL", "http://orders.local:8002")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = GatewaySettings()
    assert settings.port == 9100
    assert settings.users_url == "http://users.local:8001"
    assert settings.orders_url == "http://orders.local:8002"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.jwks_url == "http://users.local:8001/.well-known/jwks.json"
    assert settings.max_body_bytes == 1024 * 1024


def test_settings_refuse_a_route_to_an_unknown_upstream() -> None:
    with pytest.raises(ValueError, match="unknown upstreams: billing"):
        GatewaySettings(routes=[{"pattern": "/api/v1/bills/*", "upstream": "billing"}])


def test_public_routes_need_no_token(client: httpx.Client, users_recorder: Recorder) -> None:
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/revoke"):
        assert client.post(path, json={}).status_code == 200, path
    assert client.get("/.well-known/jwks.json").json()["keys"]
    assert "/api/v1/auth/register" in users_recorder.paths()


def test_protected_routes_need_a_token(client: httpx.Client, users_recorder: Recorder) -> None:
    before = len(users_recorder.requests)
    for path in ("/api/v1/users/me", "/api/v1/auth/sessions", "/api/v1/orders", "/api/v1/events/stream"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    assert len(users_recorder.requests) == before


def raw_get(base: str, path: str) -> int:
    """A request whose path goes out exactly as written (httpx would normalise the dot segments)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_internal_and_service_probes_are_404_and_never_forwarded(
    gateway: str, client: httpx.Client, auth: dict[str, str], users_recorder: Recorder
) -> None:
    before = len(users_recorder.requests)
    for path in ("/internal/users/1", "/api/v1/users/internal/users/1", "/api/v1/users/healthz"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    for path in ("/api/v1/users/../../internal/users/1", "/api/v1/users/%2e%2e/%2e%2e/internal/users/1"):
        assert raw_get(gateway, path) == 404, path
    assert len(users_recorder.requests) == before


def test_unknown_paths_are_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/api/v2/anything")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["instance"] == "/api/v2/anything"
    assert body["request_id"] == response.headers["x-request-id"]


def test_the_gateways_own_probes_answer(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"users_jwks": "ok"}
    assert "http_requests" in client.get("/metrics").text


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:8001/api/v1/users/redirect/",  # an upstream's own address
        "//10.0.0.7/api/v1/users/me",  # scheme-relative, still another host
        "/api/v1/users/redirect/",  # a trailing-slash redirect
    ],
)
def test_an_upstream_redirect_to_an_internal_address_or_a_trailing_slash_is_not_forwarded(
    client: httpx.Client, auth: dict[str, str], location: str
) -> None:
    response = client.get("/api/v1/users/redirect", params={"to": location}, headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "location" not in response.headers
    assert "127.0.0.1:8001" not in response.text
    assert "10.0.0.7" not in response.text


def test_a_relative_redirect_elsewhere_passes(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/users/redirect", params={"to": "/api/v1/users/me"}, headers=auth)
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/users/me"
