"""The attack classes, tried from outside against real processes: users, orders, realtime and the gateway.

The gateway trusts 127.0.0.1 as its ingress here, so each test is its own client (an address of its
own in ``X-Forwarded-For``) and the rate limits stay at their defaults (``RATE_LIMIT_SCALE`` unset).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import itertools
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shared.db.bootstrap import drop_database
from shared.devstack import COMPONENTS, Stack
from shared.service.settings import database_name, with_database

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, free_port, launch, read_log

# The first test also pays for the module's setup: three migrations and four processes to start.
pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"
ORDER: dict[str, Any] = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 1, "unit_price_cents": 100}],
}
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address of its own (TEST-NET-3), as the ingress would append it."""
    n = next(_addresses)
    return f"203.0.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def system(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # A database of its own: the login failures this module provokes must not throttle other modules.
    database_url = with_database(test_database_url, f"{database_name(test_database_url)}_security")
    stack = Stack(
        database_url=database_url,
        amqp_url=test_amqp_url,
        components=[c for c in COMPONENTS if c.name in ("users", "orders", "realtime", "gateway")],
        ports={c.name: free_port() for c in COMPONENTS},
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "APP_ENV": "test",
            "LOG_LEVEL": "INFO",
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        },
        log_dir=tmp_path_factory.mktemp("security-logs"),
    )
    try:
        launch(stack)
        yield stack
    finally:
        stack.stop_all()
        asyncio.run(drop_database(database_url))


@pytest.fixture(scope="module")
def account(system: Stack) -> Account:
    """One signed-in user for the tests that only need someone."""
    with client(system) as gateway:
        return register(gateway)


def client(system: Stack, name: str = "gateway", address: str | None = None) -> httpx.Client:
    headers = {"X-Forwarded-For": address or new_address()} if name == "gateway" else {}
    return httpx.Client(base_url=system.url(name), headers=headers, timeout=15)


def ws_url(system: Stack, name: str = "gateway", query: str = "") -> str:
    return system.url(name).replace("http://", "ws://", 1) + "/ws" + (f"?{query}" if query else "")


@dataclass
class Account:
    id: str
    email: str
    token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def login(gateway: httpx.Client, email: str, password: str) -> httpx.Response:
    form = {"grant_type": "password", "username": email, "password": password}
    return gateway.post("/api/v1/auth/token", data=form)


def register(gateway: httpx.Client) -> Account:
    email = f"sec-{uuid.uuid4().hex[:12]}@example.com"
    created = gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "S"}
    )
    assert created.status_code == 201, created.text
    tokens = login(gateway, email, PASSWORD)
    assert tokens.status_code == 200, tokens.text
    pair = tokens.json()
    return Account(created.json()["id"], email, pair["access_token"], pair["refresh_token"])


def problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= body.keys()
    return body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


# ---- tokens -----------------------------------------------------------------------------------------


def forged_tokens(signing_key: Ed25519PrivateKey, jwks: dict[str, Any], sub: str) -> dict[str, str]:
    key = jwks["keys"][0]
    kid = key["kid"]
    now = int(time.time())
    claims = {
        "iss": "http://users",
        "aud": "api",
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "roles": ["user", "admin"],
    }

    def signed(key: Ed25519PrivateKey = signing_key, kid: str = kid, **changes: Any) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="EdDSA", headers={"kid": kid})

    good = signed()
    header, _, signature = good.split(".")
    hs_input = _unsigned({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims)
    hs_key = json.dumps(key).encode() if "x" not in key else key["x"].encode()
    stranger = Ed25519PrivateKey.generate()
    tampered = _b64(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode())
    without_exp = {k: v for k, v in claims.items() if k != "exp"}
    return {
        "alg none": _unsigned({"alg": "none", "kid": kid}, claims) + ".",
        "alg none, no signature part": _unsigned({"alg": "none", "kid": kid}, claims),
        "HS256 keyed with the public key": hs_input
        + "."
        + _b64(hmac.new(hs_key, hs_input.encode(), hashlib.sha256).digest()),
        "unknown kid": signed(stranger, kid="not-a-key"),
        "real kid, another key": signed(stranger),
        "wrong issuer": signed(iss="http://evil"),
        "wrong audience": signed(aud="other"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "expired": signed(iat=now - 3600, exp=now - 1800),
        "no exp": jwt.encode(without_exp, signing_key, algorithm="EdDSA", headers={"kid": kid}),
        # Issued "now" but valid for ten years: longer than the issuer's lifetime plus a minute.
        "lifetime too long": signed(exp=now + 10 * 365 * 86400),
        "garbage": "not.a.token",
    }


async def handshake_refused(url: str, token: str) -> bool:
    """Refused at the handshake (HTTP 401/403), or closed with 4401 before any event."""
    try:
        async with connect(url + f"?token={token}", open_timeout=10) as ws:
            try:
                frame = await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as closed:
                return closed.rcvd is not None and closed.rcvd.code == 4401
            return bool(frame is None)
    except InvalidStatus as exc:
        return exc.response.status_code in (401, 403)


def test_forged_and_expired_tokens_of_every_kind_are_refused_everywhere(
    system: Stack, signing_key: Ed25519PrivateKey
) -> None:
    with client(system) as gateway:
        account = register(gateway)
        jwks = gateway.get("/.well-known/jwks.json").json()
    tokens = forged_tokens(signing_key, jwks, account.id)
    refused: dict[str, list[str]] = {}
    with (
        client(system) as gateway,
        client(system, "users") as users,
        client(system, "orders") as orders,
    ):
        for name, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            answers = {
                "gateway /users/me": gateway.get("/api/v1/users/me", headers=auth),
                "gateway /users (admin)": gateway.get("/api/v1/users", headers=auth),
                "users direct": users.get("/api/v1/users/me", headers=auth),
                "orders direct": orders.get("/api/v1/orders", headers=auth),
            }
            for where, answer in answers.items():
                if answer.status_code != 401:
                    refused.setdefault(name, []).append(f"{where}: {answer.status_code}")
                else:
                    assert answer.headers["www-authenticate"].startswith("Bearer")
            for where in ("gateway", "realtime"):
                if not asyncio.run(handshake_refused(ws_url(system, where), token)):
                    refused.setdefault(name, []).append(f"{where} /ws accepted")
        assert refused == {}, refused
        # The control: the same key and claims, honestly signed, are accepted (so the refusals above
        # are about the forgery, not about the test's tokens).
        honest = jwt.encode(
            {
                **jwt.decode(tokens["expired"], options={"verify_signature": False}),
                "iat": int(time.time()),
                "exp": int(time.time()) + 300,
                "roles": ["user"],
            },
            signing_key,
            algorithm="EdDSA",
            headers={"kid": jwks["keys"][0]["kid"]},
        )
        assert (
            gateway.get("/api/v1/users/me", headers={"Authorization": f"Bearer {honest}"}).status_code == 200
        )


# ---- paths and redirects ----------------------------------------------------------------------------


def raw_get(url: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request with the path exactly as written (httpx would normalise dot segments)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path",
    [
        "/internal/users/{id}",
        "/api/v1/users/../../internal/users/{id}",
        "/api/v1/users/%2e%2e/%2e%2e/internal/users/{id}",
        "/api/v1/orders/..%2f..%2finternal/users/{id}",
        "/api/v1/users/%69nternal/users/{id}",
        "/api/v1/users/INTERNAL/users/{id}",
        "//internal/users/{id}",
        "/api/v1/orders/metrics",
        "/api/v1/orders/%6detrics",
        "/api/v1/orders/metrics/",
        "/api/v1/users/healthz",
        "/api/v1/notifications/readyz",
        "/api/v1/events/metrics",
    ],
)
def test_path_tricks_never_reach_internal_or_operational_endpoints(
    system: Stack, account: Account, path: str
) -> None:
    headers = {**account.auth, "X-Forwarded-For": new_address()}
    status, body = raw_get(system.url("gateway"), path.format(id=account.id), headers)
    assert status in (400, 404), (status, body[:300])
    assert "http_requests" not in body
    assert account.email not in body


def test_an_upstream_trailing_slash_redirect_does_not_leak_an_internal_address(
    system: Stack, account: Account
) -> None:
    with client(system) as gateway:
        for path in ("/api/v1/orders/", "/api/v1/users/me/"):
            answer = gateway.get(path, headers=account.auth, follow_redirects=False)
            assert not answer.is_redirect, (path, answer.headers.get("location"))
            for upstream in ("users", "orders"):
                assert f":{system.port(upstream)}" not in answer.text
                assert f":{system.port(upstream)}" not in answer.headers.get("location", "")


def test_readyz_names_checks_without_addresses(system: Stack) -> None:
    for name in ("gateway", "users", "orders", "realtime"):
        with client(system, name) as probe:
            ready = probe.get("/readyz")
        assert ready.status_code == 200, (name, ready.text)
        assert set(ready.json()["checks"].values()) == {"ok"}
        assert "127.0.0.1" not in ready.text
        assert "http" not in ready.text


# ---- request heads ----------------------------------------------------------------------------------


def head_answer(url: str, head: bytes, *, stream_mib: int = 0, timeout: float = 20) -> tuple[bytes, int]:
    """Send ``head`` (then up to ``stream_mib`` MiB more of it); the answer read until close, bytes sent."""
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as conn:
        with contextlib.suppress(OSError):
            conn.sendall(head)
            sent += len(head)
            chunk = b"a" * 65536
            for _ in range(stream_mib * 16):
                conn.sendall(chunk)
                sent += len(chunk)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while part := conn.recv(65536):
                answer += part
    return answer, sent


@pytest.mark.parametrize("component", ["gateway", "users", "realtime"])
def test_an_oversized_head_is_refused_without_being_read(system: Stack, component: str) -> None:
    answer, sent = head_answer(
        system.url(component), b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", stream_mib=64
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 16 * 1024 * 1024, "the server kept reading"
    fields = "".join(f"X-F{n}: v\r\n" for n in range(101))
    answer, _ = head_answer(
        system.url(component), f"GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode()
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # The server is none the worse for it.
    with client(system, component) as probe:
        assert probe.get("/healthz").status_code == 200


def test_a_head_that_never_completes_is_closed(system: Stack) -> None:
    # Closed by the gateway's 10 s head timeout; a gateway that held it would make the read raise
    # TimeoutError at the socket's 20 s.
    answer, _ = head_answer(
        system.url("gateway"), b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a", timeout=20
    )
    assert answer == b""


# ---- streams ----------------------------------------------------------------------------------------


async def _frame_too_big(url: str) -> int | None:
    async with connect(url, open_timeout=10, max_size=None) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # ready
        await ws.send("x" * (16 * 1024 + 1))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


@pytest.mark.parametrize("where", ["gateway", "realtime"])
def test_a_client_frame_over_16_kib_closes_with_1009(system: Stack, account: Account, where: str) -> None:
    assert asyncio.run(_frame_too_big(ws_url(system, where, f"token={account.token}"))) == 1009


async def _open_streams(system: Stack, account: Account, address: str) -> dict[str, Any]:
    headers = {"X-Forwarded-For": address}
    async with contextlib.AsyncExitStack() as held:
        http = await held.enter_async_context(
            httpx.AsyncClient(base_url=system.url("gateway"), headers=headers, timeout=15)
        )
        sockets = []
        for _ in range(7):
            ws = await held.enter_async_context(
                connect(
                    ws_url(system, query=f"token={account.token}"),
                    additional_headers=headers,
                    open_timeout=10,
                )
            )
            await asyncio.wait_for(ws.recv(), 10)
            sockets.append(ws)
        lines = []
        for _ in range(3):
            # A browser's EventSource: the token in the URL.
            stream = await held.enter_async_context(
                http.stream("GET", "/api/v1/events/stream", params={"token": account.token})
            )
            assert stream.status_code == 200
            reader = stream.aiter_lines()
            lines.append(reader)  # kept: a reader left to the collector closes its response
            assert await asyncio.wait_for(anext(reader), 10)
        with pytest.raises(InvalidStatus) as over_ws:
            async with connect(
                ws_url(system, query=f"token={account.token}"), additional_headers=headers, open_timeout=10
            ):
                pass
        over_sse = await http.get("/api/v1/events/stream", params={"token": account.token})
        await sockets[0].close()
        deadline = time.monotonic() + 15
        while True:
            try:
                async with connect(
                    ws_url(system, query=f"token={account.token}"),
                    additional_headers=headers,
                    open_timeout=10,
                ) as again:
                    await asyncio.wait_for(again.recv(), 10)
                    freed = True
                    break
            except InvalidStatus:
                if time.monotonic() > deadline:
                    freed = False
                    break
                await asyncio.sleep(0.2)
        return {
            "ws": over_ws.value.response.status_code,
            "ws_type": over_ws.value.response.headers.get("content-type"),
            "sse": over_sse.status_code,
            "freed": freed,
        }


def test_streams_per_user_are_capped_at_the_handshake(system: Stack) -> None:
    address = new_address()
    with client(system, address=address) as gateway:
        account = register(gateway)
    outcome = asyncio.run(_open_streams(system, account, address))
    assert outcome == {"ws": 429, "ws_type": PROBLEM, "sse": 429, "freed": True}


def test_a_token_in_a_stream_url_never_reaches_a_log_line(system: Stack) -> None:
    with client(system) as gateway:
        account = register(gateway)
        params = {"token": account.token}
        with gateway.stream("GET", "/api/v1/events/stream", params=params) as stream:
            assert stream.status_code == 200
            assert next(stream.iter_lines())

    async def handshakes() -> None:
        # Percent-encoded parameter names are the same parameter to every server.
        for query in (
            f"token={account.token}",
            f"%74oken={account.token}",
            f"%74%6F%6B%65%6E={account.token}",
        ):
            async with connect(ws_url(system, "realtime", query), open_timeout=10) as ws:
                await asyncio.wait_for(ws.recv(), 10)

    asyncio.run(handshakes())
    signature = account.token.rsplit(".", 1)[1]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # access lines are written after the response; give them a moment
        logs = {name: read_log(system, name) for name in ("gateway", "realtime", "users")}
        time.sleep(0.2)
    for name, text in logs.items():
        assert signature not in text, f"the token is in the {name} log"
    assert "<redacted>" in logs["realtime"]


# ---- input --------------------------------------------------------------------------------------------


def test_numbers_in_headers_and_query_strings_are_ascii_digits_only(system: Stack, account: Account) -> None:
    with client(system) as gateway:
        for header in ("\u00b2", "\u0663"):
            answer = gateway.get(
                "/api/v1/events/stream",
                params={"token": account.token},
                headers={b"Last-Event-ID": header.encode()},
            )
            problem(answer, 422)
        problem(gateway.get("/api/v1/events/stream", params={"token": account.token, "since": "\u00b2"}), 422)
        problem(gateway.get("/api/v1/orders", params={"limit": "\u0661\u0660"}, headers=account.auth), 422)

    async def since_on_the_websocket() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(system, query=f"token={account.token}&since=%C2%B2"), open_timeout=10):
                pass
        return refused.value.response.status_code

    assert asyncio.run(since_on_the_websocket()) == 422


def test_control_characters_in_text_fields_are_refused(system: Stack, account: Account) -> None:
    with client(system) as gateway:
        nul = gateway.post(
            "/api/v1/auth/register",
            json={
                "email": f"n-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
                "full_name": "a\x00b",
            },
        )
        problem(nul, 422)
        login_nul = login(gateway, "a\x00@example.com", PASSWORD)
        assert login_nul.status_code == 400, login_nul.text
        assert login_nul.json()["error"] in ("invalid_request", "invalid_grant")
        problem(gateway.patch("/api/v1/users/me", json={"full_name": "\x00"}, headers=account.auth), 422)
        problem(gateway.patch("/api/v1/users/me", json={"full_name": "a\x1bb"}, headers=account.auth), 422)
        bad_item = {**ORDER, "items": [{**ORDER["items"][0], "name": "Wid\x00get"}]}
        problem(gateway.post("/api/v1/orders", json=bad_item, headers=account.auth), 422)


CRAFTED_CURSORS = (
    "garbage",
    "%%%",
    _b64(b'{"created_at": "not a time", "id": "x"}'),
    _b64(b"\x00\x01\x02"),
    _b64(json.dumps(["2026-01-01T00:00:00Z", "not-a-uuid"]).encode()),
    "A" * 2000,
)


def test_a_crafted_cursor_is_422_on_every_list(system: Stack, account: Account) -> None:
    with client(system) as gateway:
        admin = login(gateway, ADMIN_EMAIL, ADMIN_PASSWORD).json()["access_token"]
        admin_auth = {"Authorization": f"Bearer {admin}"}
        for cursor in CRAFTED_CURSORS:
            problem(gateway.get("/api/v1/orders", params={"cursor": cursor}, headers=account.auth), 422)
            problem(gateway.get("/api/v1/users", params={"cursor": cursor}, headers=admin_auth), 422)


# ---- access -------------------------------------------------------------------------------------------


def test_one_user_cannot_read_or_move_anothers_order_nor_act_as_admin(system: Stack) -> None:
    with client(system) as gateway:
        alice, mallory = register(gateway), register(gateway)
        created = gateway.post("/api/v1/orders", json=ORDER, headers=alice.auth)
        assert created.status_code == 201, created.text
        order = created.json()["id"]
        assert gateway.post(f"/api/v1/orders/{order}/pay", headers=alice.auth).status_code == 200

        problem(gateway.get(f"/api/v1/orders/{order}", headers=mallory.auth), 404)
        # Someone else's order is 404 for every transition, whatever its state (not 409).
        for action in ("pay", "cancel"):
            problem(gateway.post(f"/api/v1/orders/{order}/{action}", headers=mallory.auth), 404)
        for action in ("ship", "deliver"):
            problem(gateway.post(f"/api/v1/orders/{order}/{action}", headers=mallory.auth), 403, 404)
        listed = gateway.get("/api/v1/orders", params={"user_id": alice.id}, headers=mallory.auth)
        assert listed.status_code in (200, 403)
        assert order not in listed.text

        problem(gateway.get("/api/v1/users", headers=mallory.auth), 403)
        problem(gateway.get(f"/api/v1/users/{alice.id}", headers=mallory.auth), 403)
        problem(gateway.post(f"/api/v1/users/{alice.id}/deactivate", headers=mallory.auth), 403)
        # Claiming a role in the body changes nothing.
        patched = gateway.patch(
            "/api/v1/users/me", json={"full_name": "M", "roles": ["admin"]}, headers=mallory.auth
        )
        assert patched.status_code in (200, 422)
        assert gateway.get("/api/v1/users/me", headers=mallory.auth).json()["roles"] == ["user"]
        assert gateway.get("/api/v1/users/me", headers=alice.auth).json()["is_active"] is True


def test_failed_logins_from_a_shared_address_do_not_lock_out_a_correct_password(system: Stack) -> None:
    with client(system) as gateway:
        victim = register(gateway)
    # Directly at users from one address: what every client looks like behind an ingress that is not
    # configured as a trusted proxy (users trusts loopback, so the address is this test's own).
    with client(system, "users") as shared_address:
        shared_address.headers["X-Forwarded-For"] = new_address()
        for _ in range(50):
            answer = login(shared_address, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "wrong password")
            assert answer.status_code in (400, 429), answer.text
        correct = login(shared_address, victim.email, PASSWORD)
        assert correct.status_code == 200, correct.text
    with client(system) as elsewhere:
        assert login(elsewhere, victim.email, PASSWORD).status_code == 200


# ---- rate limits ----------------------------------------------------------------------------------------


def test_rate_limits_are_on_by_default_and_cannot_be_dodged_with_x_forwarded_for(system: Stack) -> None:
    address = new_address()
    with client(system, address=address) as gateway:
        statuses = []
        for n in range(30):
            # Writing addresses in front of the one the ingress appends does not make a new client.
            headers = {"X-Forwarded-For": f"198.51.100.{n}, {address}"}
            answer = gateway.post("/api/v1/auth/register", json={}, headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
        assert statuses[-1] == 429, statuses
        refused = problem(answer, 429)
        assert refused["type"].endswith("rate-limited")
        assert int(answer.headers["retry-after"]) >= 1
    with client(system) as other:
        assert other.post("/api/v1/auth/register", json={}).status_code == 422, (
            "another client is not limited"
        )


def test_websocket_handshakes_are_rate_limited(system: Stack) -> None:
    headers = {"X-Forwarded-For": new_address()}

    async def hammer() -> list[int]:
        statuses = []
        for _ in range(40):
            try:
                async with connect(ws_url(system), additional_headers=headers, open_timeout=10):
                    statuses.append(101)
            except InvalidStatus as exc:
                statuses.append(exc.response.status_code)
                if exc.response.status_code == 429:
                    break
        return statuses

    statuses = asyncio.run(hammer())
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}
