"""Accounts end to end through the gateway, with every component as a process and a real SMTP sink:
verification and reset links taken from the e-mails received, deletion felt by every service, a
compressed orders page, and the verification link followed in Chromium."""

from __future__ import annotations

import asyncio
import email
import email.policy
import gzip
import re
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Page, async_playwright, expect
from websockets.exceptions import ConnectionClosed

from realtime_testing import Frames, ws_connect
from shared.devstack import COMPONENTS, Stack
from shared.testing.tools import require_tool
from shared.testing.waits import eventually, eventually_blocking

from .conftest import free_port, launch
from .test_system_console import CHROMIUM_ARGS

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

PASSWORD = "long enough password"
NEW_PASSWORD = "an entirely new passphrase"
LINK = re.compile(r"(http://\S+/console/(?:verify|reset)\?token=[A-Za-z0-9_-]+)")


@dataclass
class Inbox:
    """An SMTP sink (aiosmtpd on its own thread): every message received, by recipient."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def link(self, address: str, index: int = -1) -> str:
        """The link in the ``index``-th e-mail to ``address`` (its plain-text part)."""
        part = self.to(address)[index].get_body(("plain",))
        assert part is not None
        found = LINK.search(part.get_content())
        assert found is not None, part.get_content()
        return found.group(1)


@dataclass(frozen=True)
class System:
    stack: Stack
    inbox: Inbox

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")


@pytest.fixture(scope="module")
def system(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    wanted = ("users", "orders", "notification", "realtime", "gateway")
    ports = {c.name: free_port() for c in COMPONENTS}
    stack = Stack(
        database_url=test_database_url,
        amqp_url=test_amqp_url,
        components=[c for c in COMPONENTS if c.name in wanted],
        ports=ports,
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "NOTIFICATION_EMAIL_POLL_INTERVAL": "0.1",
            # Every request here comes from one address.
            "RATE_LIMIT_SCALE": "100",
        },
        log_dir=tmp_path_factory.mktemp("accounts-logs"),
    )
    try:
        launch(stack)
        yield System(stack, inbox)
    finally:
        stack.stop_all()
        smtp.stop()


@pytest.fixture
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=10) as client:
        yield client


def register(gateway: httpx.Client, address: str | None = None) -> tuple[str, str]:
    address = address or f"acct-{uuid.uuid4().hex[:10]}@example.com"
    created = gateway.post(
        "/api/v1/auth/register", json={"email": address, "password": PASSWORD, "full_name": "Ada"}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], address


def login(gateway: httpx.Client, address: str, password: str = PASSWORD) -> httpx.Response:
    return gateway.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": address, "password": password}
    )


def bearer(gateway: httpx.Client, address: str) -> dict[str, str]:
    response = login(gateway, address)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def token_of(link: str) -> str:
    return link.rsplit("token=", 1)[1]


def wait_mail(system: System, address: str, count: int = 1) -> None:
    eventually_blocking(
        lambda: len(system.inbox.to(address)) >= count, timeout=30, message=f"no e-mail to {address}"
    )


def test_the_verification_link_from_the_welcome_email_verifies_the_address(
    system: System, gateway: httpx.Client
) -> None:
    user_id, address = register(gateway)
    wait_mail(system, address)
    [mail] = system.inbox.to(address)
    assert mail["Subject"] == "Welcome aboard"
    link = system.inbox.link(address)
    assert link.startswith(system.gateway + "/console/verify?token=")
    assert gateway.get(link).status_code == 200  # the console page behind it

    verified = gateway.post("/api/v1/auth/verify-email", json={"token": token_of(link)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["id"] == user_id
    assert verified.json()["email_verified"] is True
    me = gateway.get("/api/v1/users/me", headers=bearer(gateway, address))
    assert me.json()["email_verified"] is True
    again = gateway.post("/api/v1/auth/verify-email", json={"token": token_of(link)})
    assert again.status_code == 400


def test_a_reset_link_sets_a_new_password_and_ends_every_session(
    system: System, gateway: httpx.Client
) -> None:
    _, address = register(gateway)
    wait_mail(system, address)
    old = login(gateway, address).json()

    asked = gateway.post("/api/v1/auth/password-reset", json={"email": address})
    assert asked.status_code == 202
    wait_mail(system, address, 2)
    mail = system.inbox.to(address)[-1]
    assert mail["Subject"] == "Reset your password"
    link = system.inbox.link(address)
    assert link.startswith(system.gateway + "/console/reset?token=")

    confirm = {"token": token_of(link), "new_password": NEW_PASSWORD}
    done = gateway.post("/api/v1/auth/password-reset/confirm", json=confirm)
    assert done.status_code == 204, done.text
    refreshed = gateway.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert login(gateway, address).status_code == 400
    assert login(gateway, address, NEW_PASSWORD).status_code == 200
    reused = {"token": token_of(link), "new_password": "and another one again"}
    assert gateway.post("/api/v1/auth/password-reset/confirm", json=reused).status_code == 400


def test_an_unknown_address_cannot_be_told_from_a_known_one(gateway: httpx.Client) -> None:
    def ask(address: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        response = gateway.post("/api/v1/auth/password-reset", json={"email": address})
        return time.perf_counter() - started, response.status_code, response.content

    known, unknown = [], []
    for _ in range(5):
        _, address = register(gateway)
        known.append(ask(address))
        unknown.append(ask(f"nobody-{uuid.uuid4().hex[:10]}@example.com"))
    answers = {(status, body) for _, status, body in known + unknown}
    assert len(answers) == 1
    assert next(iter(answers))[0] == 202
    # Medians of interleaved samples, with a generous bound: both wait for the same answer floor.
    known_median = statistics.median(t for t, _, _ in known)
    unknown_median = statistics.median(t for t, _, _ in unknown)
    assert abs(known_median - unknown_median) < 0.5 * max(known_median, unknown_median)


async def _rows_of(database_url: str, user_id: uuid.UUID) -> dict[str, int]:
    tables = (
        "notification.notifications",
        "notification.contacts",
        "notification.emails",
        "realtime.stream_events",
        "realtime.user_offsets",
        "users.users",
        "users.refresh_tokens",
    )
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {'id' if table == 'users.users' else 'user_id'} = $1",
                user_id,
            )
            for table in tables
        }
    finally:
        await conn.close()


ORDER: dict[str, Any] = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 3, "unit_price_cents": 100}],
}


async def test_deleting_an_account_reaches_every_service(system: System, gateway: httpx.Client) -> None:
    user_id, address = await asyncio.to_thread(register, gateway)
    await asyncio.to_thread(wait_mail, system, address)
    tokens = (await asyncio.to_thread(login, gateway, address)).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    ws_url = system.gateway.replace("http://", "ws://", 1) + "/ws"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        async with ws_connect(ws_url, tokens["access_token"]) as ws:
            frames = Frames(ws)
            assert (await frames.next_non_ping())["type"] == "ready"
            created = await client.post("/api/v1/orders", json=ORDER, headers=auth)
            assert created.status_code == 201, created.text
            await frames.events(1, timeout=20)
            uid = uuid.UUID(user_id)
            await eventually(
                lambda: _rows_of(system.stack.database_url, uid),
                timeout=20,
                message="the user's rows never appeared",
            )

            deleted = await client.post("/api/v1/users/me/delete", json={"password": PASSWORD}, headers=auth)
            assert deleted.status_code == 204, deleted.text
            # Contract: the user's connections close with 4403 within 5 seconds.
            closed_at = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while time.monotonic() - closed_at < 5:
                    await frames.next(timeout=5)
            assert ws.close_code == 4403

        rows = await eventually(
            lambda: _nothing_left_or_none(system.stack.database_url, uid), timeout=20, message="data left"
        )
        assert not any(rows.values())
        # The order stays for the books, cancelled because of the deletion.
        conn = await asyncpg.connect(system.stack.database_url)
        try:
            statuses = await eventually(
                lambda: _cancelled(conn, created.json()["id"]), timeout=20, message="order not cancelled"
            )
        finally:
            await conn.close()
        assert statuses == "cancelled"
        # The token no longer works where the account is looked up; the e-mail may register again.
        assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 401
        again = await client.post(
            "/api/v1/auth/register", json={"email": address, "password": PASSWORD, "full_name": "Ada again"}
        )
        assert again.status_code == 201
        assert again.json()["id"] != user_id


async def _nothing_left_or_none(database_url: str, user_id: uuid.UUID) -> dict[str, int] | None:
    rows = await _rows_of(database_url, user_id)
    return rows if not any(rows.values()) else None


async def _cancelled(conn: asyncpg.Connection, order_id: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM orders.orders WHERE id = $1", uuid.UUID(order_id)
    )
    return status if status == "cancelled" else None


def test_a_compressed_orders_page_decodes_to_the_same_json(gateway: httpx.Client) -> None:
    _, address = register(gateway)
    auth = bearer(gateway, address)
    for _ in range(6):
        assert gateway.post("/api/v1/orders", json=ORDER, headers=auth).status_code == 201
    plain = gateway.get("/api/v1/orders", headers={**auth, "Accept-Encoding": "identity"})
    assert len(plain.content) >= 1024
    with gateway.stream("GET", "/api/v1/orders", headers={**auth, "Accept-Encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in response.headers["vary"].lower()
        raw = b"".join(response.iter_raw())
    assert len(raw) < len(plain.content)
    assert orjson.loads(gzip.decompress(raw)) == plain.json()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    chromium = require_tool("chromium")  # Debian's, never a downloaded browser build
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_a_person_follows_the_verification_link_in_a_browser(
    system: System, gateway: httpx.Client, page: Page
) -> None:
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    user_id, address = await asyncio.to_thread(register, gateway)
    await asyncio.to_thread(wait_mail, system, address)
    link = system.inbox.link(address)
    await page.goto(link)
    await expect(page.locator("#result")).to_have_text("Your e-mail address is verified.", timeout=20_000)
    # The token leaves the address bar once read.
    assert "token=" not in page.url
    headers = await asyncio.to_thread(bearer, gateway, address)
    me = await asyncio.to_thread(gateway.get, "/api/v1/users/me", headers=headers)
    assert me.json()["id"] == user_id
    assert me.json()["email_verified"] is True
    # Followed again, the link is spent.
    await page.goto(link)
    await expect(page.locator("#result")).to_contain_text("not valid", timeout=20_000)
    assert uncaught == []
