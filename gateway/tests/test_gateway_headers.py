"""What crosses the gateway: forwarded headers in, hop-by-hop headers stopped both ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from gateway.headers import client_response_headers, upstream_request_headers
from gateway_testing import Recorder
from shared.testing.servers import Running
from shared.web.client_address import TrustedProxies


def received(response: httpx.Response) -> dict[str, str]:
    """The headers the stand-in upstream received (it echoes them), by lower-case name."""
    assert response.status_code == 200, response.text
    headers: list[list[str]] = response.json()["headers"]
    return {name: value for name, value in headers}


def test_identity_and_forwarding_headers_reach_the_service(
    gateway: str, client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/users/me?x=1&y=%2F",
        headers={**auth, "X-Request-ID": "req-123.abc", "X-Custom": "kept", "Accept-Language": "de"},
    )
    upstream = received(response)
    assert upstream["authorization"] == auth["Authorization"]
    assert upstream["x-request-id"] == "req-123.abc"
    assert upstream["x-custom"] == "kept"
    assert upstream["accept-language"] == "de"
    assert upstream["x-forwarded-for"] == "127.0.0.1"
    assert upstream["x-forwarded-proto"] == "http"
    assert upstream["x-forwarded-host"] == gateway.removeprefix("http://")
    assert upstream["host"] != upstream["x-forwarded-host"]
    assert response.json()["query"] == "x=1&y=%2F"
    assert response.headers["x-request-id"] == "req-123.abc"


def test_a_minted_request_id_is_the_one_forwarded_and_echoed(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.get("/api/v1/users/me", headers={**auth, "X-Request-ID": "not valid!"})
    minted = response.headers["x-request-id"]
    assert minted != "not valid!"
    assert received(response)["x-request-id"] == minted


def test_a_spoofed_forwarded_for_is_replaced_by_the_peer(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/users/me", headers={**auth, "X-Forwarded-For": "6.6.6.6"})
    assert received(response)["x-forwarded-for"] == "127.0.0.1"


def test_a_trusted_proxy_extends_forwarded_for(
    start_gateway: Callable[..., Running], users_upstream: Running, auth: dict[str, str]
) -> None:
    gateway = start_gateway(users_url=users_upstream.url, trusted_proxies="127.0.0.0/8")
    with httpx.Client(base_url=gateway.url) as client:
        response = client.get("/api/v1/users/me", headers={**auth, "X-Forwarded-For": "203.0.113.9"})
    assert received(response)["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_hop_by_hop_request_headers_stop_at_the_gateway(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get(
        "/api/v1/users/me",
        headers={
            **auth,
            "Connection": "keep-alive, X-Secret",
            "X-Secret": "for the gateway only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        },
    )
    upstream = received(response)
    for name in ("x-secret", "keep-alive", "te", "trailer", "proxy-authorization", "upgrade"):
        assert name not in upstream, name
    assert upstream.get("connection", "keep-alive").lower() == "keep-alive"


def test_hop_by_hop_response_headers_stop_at_the_gateway(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/users/hop", headers=auth)
    assert response.status_code == 200
    assert response.headers["x-kept"] == "yes"
    for name in ("x-private", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers, name
    assert "x-private" not in response.headers.get("connection", "").lower()
    assert response.headers.get_list("date") == [response.headers["date"]]


def test_request_bodies_and_methods_are_forwarded(
    client: httpx.Client, auth: dict[str, str], users_recorder: Recorder
) -> None:
    payload = b'{"full_name": "Ada"}' * 100
    response = client.patch(
        "/api/v1/users/me", content=payload, headers={**auth, "Content-Type": "application/json"}
    )
    echoed = response.json()
    assert (echoed["method"], echoed["body_length"]) == ("PATCH", len(payload))
    assert received(response)["content-type"] == "application/json"

    def chunks() -> Any:
        yield b'{"a": '
        yield b'"chunked"}'

    streamed = client.post("/api/v1/users/me/x", content=chunks(), headers=auth).json()
    assert streamed["body_length"] == len(b'{"a": "chunked"}')
    assert "transfer-encoding" not in {name for name, _ in streamed["headers"]}
    assert users_recorder.requests[-1]["path"] == "/api/v1/users/me/x"


def test_header_rewriting_in_one_pass() -> None:
    forwarded = upstream_request_headers(
        [
            (b"host", b"api.example.com"),
            (b"connection", b"x-a, X-B"),
            (b"x-a", b"1"),
            (b"x-b", b"2"),
            (b"x-c", b"3"),
            (b"content-length", b"12"),
            (b"expect", b"100-continue"),
            (b"authorization", b"Bearer t"),
        ],
        request_id=b"rid",
        client_ip="10.0.0.7",
        scheme="https",
        trusted=TrustedProxies([]),
    )
    assert forwarded.headers == [
        (b"x-c", b"3"),
        (b"authorization", b"Bearer t"),
        (b"x-request-id", b"rid"),
        (b"x-forwarded-for", b"10.0.0.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"api.example.com"),
    ]
    assert (forwarded.authorization, forwarded.content_length, forwarded.chunked) == (b"Bearer t", 12, False)
    assert client_response_headers(
        [(b"connection", b"x-z"), (b"x-z", b"1"), (b"server", b"uvicorn"), (b"content-type", b"a/b")]
    ) == [(b"content-type", b"a/b")]
