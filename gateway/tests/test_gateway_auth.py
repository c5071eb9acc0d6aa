"""The JWT check in front of every non-public route: 401 problems a client can act on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from gateway_testing import Recorder
from shared.testing.servers import Running, closed_port_url
from shared.testing.tokens import TokenIssuer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_unauthorized(response: httpx.Response, challenge: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert body["status"] == 401
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_valid_token_passes_and_reaches_the_service(
    client: httpx.Client, keys: TokenIssuer, users_recorder: Recorder
) -> None:
    token = keys.token()
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert ["authorization", f"Bearer {token}"] in response.json()["headers"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_without_a_bearer_token_the_challenge_is_plain(client: httpx.Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_unauthorized(client.get("/api/v1/users/me", headers=headers), "Bearer")


def unsigned(header: dict[str, str], claims: dict[str, object]) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


def hs256_with_public_key(keys: TokenIssuer, claims: dict[str, object]) -> str:
    """Key confusion: an HMAC keyed with the public key, as if it were a shared secret."""
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "test-key-1"}, claims)
    secret = keys.jwks()["keys"][0]["x"].encode()
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def forged_tokens(keys: TokenIssuer) -> dict[str, str]:
    claims = keys.claims()
    return {
        "garbage": "not-a-token",
        "expired": keys.token(exp=int(time.time()) - 60, iat=int(time.time()) - 600),
        "alg-none": unsigned({"alg": "none", "kid": "test-key-1"}, claims) + ".",
        "hs256": hs256_with_public_key(keys, claims),
        "unknown-key": jwt.encode(
            claims, TokenIssuer().private, algorithm="EdDSA", headers={"kid": "test-key-1"}
        ),
        "unknown-kid": keys.token(kid="nobody"),
        "wrong-audience": keys.token(aud="another-api"),
        "wrong-issuer": keys.token(iss="http://evil"),
        "no-jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"},
            keys.private,
            algorithm="EdDSA",
            headers={"kid": "test-key-1"},
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "expired",
        "alg-none",
        "hs256",
        "unknown-key",
        "unknown-kid",
        "wrong-audience",
        "wrong-issuer",
        "no-jti",
    ],
)
def test_invalid_tokens_are_refused_before_the_service(
    client: httpx.Client, keys: TokenIssuer, users_recorder: Recorder, kind: str
) -> None:
    token = forged_tokens(keys)[kind]
    before = len(users_recorder.requests)
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_unauthorized(response, 'Bearer error="invalid_token"')
    assert len(users_recorder.requests) == before


def test_an_unreachable_issuer_is_503_not_a_misleading_401(
    start_gateway: Callable[..., Running], keys: TokenIssuer
) -> None:
    gateway = start_gateway(users_url=closed_port_url(), connect_timeout=0.5)
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {keys.token()}"})
        assert response.status_code == 503
        assert response.headers["retry-after"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "users_jwks" in ready.json()["detail"]
