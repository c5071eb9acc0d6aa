"""CORS from the allow-list: browsers on an allowed origin may call the API, others may not."""

from __future__ import annotations

import httpx

ALLOWED = "https://app.example.com"


def preflight(client: httpx.Client, origin: str, path: str = "/api/v1/users/me") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_a_preflight_from_an_allowed_origin_is_granted_without_a_token(client: httpx.Client) -> None:
    response = preflight(client, ALLOWED)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "PATCH" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert response.headers["access-control-allow-credentials"] == "true"


def test_a_preflight_from_another_origin_is_refused(client: httpx.Client) -> None:
    response = preflight(client, "https://evil.example")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in response.json()["detail"]


def test_an_allowed_origin_can_read_the_answer_and_its_request_id(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.get("/api/v1/users/me", headers={**auth, "Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_another_origin_gets_no_grant(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/users/me", headers={**auth, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_the_gateways_own_endpoints_follow_the_same_list(client: httpx.Client) -> None:
    assert preflight(client, ALLOWED, "/openapi.json").headers["access-control-allow-origin"] == ALLOWED
    assert (
        "access-control-allow-origin"
        not in preflight(client, "https://evil.example", "/openapi.json").headers
    )
