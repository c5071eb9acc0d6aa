"""``/console`` in a real browser: Debian's headless Chromium driven by Playwright, on real processes.

A person's path: register, log in, create an order, pay it, and watch ``order.created``,
``order.status_changed`` and the notifications arrive on the open page; then the realtime service
restarts, and the page reconnects and catches up on what it missed. Access tokens live a few seconds
here, so the page must refresh its token, and tell the WebSocket, to stay connected.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from shared.devstack import Stack
from shared.testing.tools import require_tool

from .opsstack import running_stack

# Offline and quiet: no sandbox (root in a container), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ACCESS_TOKEN_TTL = 8  # seconds; the page refreshes at 80 % of it, and at least 5 s before the end
LIVE = 20_000  # ms to wait for something that travels through the broker and back

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(180),  # setup: four migrations and five processes to start
]


@pytest.fixture(scope="module")
def console_stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with running_stack(
        test_database_url,
        test_amqp_url,
        signing_key_file,
        tmp_path_factory.mktemp("console-logs"),
        env={"USERS_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL)},
        components=("users", "orders", "notification", "realtime", "gateway"),
    ) as stack:
        yield stack


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    chromium = require_tool("chromium")  # Debian's, never a downloaded browser build
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page(viewport={"width": 1280, "height": 1000})
        finally:
            await browser.close()


async def test_a_person_orders_pays_and_watches_the_events_arrive_live(
    console_stack: Stack, page: Page, tmp_path: Path
) -> None:
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    try:
        await journey(page, console_stack)
    except BaseException:
        await page.screenshot(path=tmp_path / "console-failure.png", full_page=True)
        raise
    await page.screenshot(path=tmp_path / "console.png", full_page=True)
    assert uncaught == []


async def journey(page: Page, stack: Stack) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    # Markup in a name must reach the page as text (the header, the welcome notification, the feed).
    name = '<img src=x onerror="window.pwned = 1">Ada'
    await page.goto(stack.url("gateway") + "/console")

    register = page.locator("#register-form")
    await register.get_by_label("E-mail").fill(email)
    await register.get_by_label("Password").fill("long enough")
    await register.get_by_label("Full name").fill(name)
    await register.get_by_role("button", name="Register").click()
    await expect(page.locator("#status")).to_contain_text(f"Registered {email}")

    login = page.locator("#login-form")
    await expect(login.get_by_label("E-mail")).to_have_value(email)
    await login.get_by_label("Password").fill("long enough")
    await login.get_by_role("button", name="Log in").click()
    await expect(page.locator("#who")).to_have_text(f"{name} <{email}>")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LIVE)
    logged_in = time.monotonic()
    notifications = page.locator("#notifications li")
    await expect(notifications.filter(has_text=f"Welcome, {name}!")).to_have_count(1, timeout=LIVE)

    # Create an order (the form's defaults: one Widget at 12.50 USD) and pay it.
    await page.get_by_role("button", name="Create order").click()
    row = page.locator("#orders tr")
    await expect(row).to_have_count(1)
    await expect(row.locator(".order-status")).to_have_text("pending")
    feed = page.locator("#feed li")
    created = feed.and_(page.locator('[data-event="order.created"]'))
    await expect(created).to_contain_text("created, 12.50 USD", timeout=LIVE)

    await row.get_by_role("button", name="Pay").click()
    changed = feed.and_(page.locator('[data-event="order.status_changed"]'))
    await expect(changed).to_contain_text("pending → paid", timeout=LIVE)
    await expect(row.locator(".order-status")).to_have_text("paid", timeout=LIVE)
    await expect(feed.and_(page.locator('[data-event="notification.created"]'))).not_to_have_count(
        0, timeout=LIVE
    )
    await expect(notifications).to_have_count(3, timeout=LIVE)  # welcome, order received, order paid
    await expect(page.locator("#unread")).to_have_text("3")
    await notifications.get_by_role("button", name="Mark read").first.click()
    await expect(page.locator("#unread")).to_have_text("2")
    assert await page.locator("img").count() == 0
    assert await page.evaluate("window.pwned === undefined")

    # Past the first token's lifetime: still live, because the page refreshed it on the WebSocket too.
    await page.wait_for_timeout(max(0.0, logged_in + ACCESS_TOKEN_TTL + 1 - time.monotonic()) * 1000)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert await token_expired_closes(stack) == 0, "the page let its WebSocket's token expire"

    # The realtime service restarts (close 1012); an order is placed meanwhile. The page reconnects
    # with since=<last offset> and shows the missed event once.
    last = int(await feed.first.get_attribute("data-offset") or 0)
    await asyncio.to_thread(stack.stop, "realtime")
    await expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
    await page.get_by_role("button", name="Create order").click()
    await expect(row).to_have_count(2)
    await asyncio.to_thread(stack.start, "realtime")
    await asyncio.to_thread(stack.wait_ready, "realtime")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=40_000)
    missed = page.locator(f'#feed li[data-event="order.created"][data-offset="{last + 1}"]')
    await expect(missed).to_have_count(1, timeout=LIVE)
    offsets = [int(o or 0) for o in await feed.evaluate_all("items => items.map(i => i.dataset.offset)")]
    assert offsets == sorted(set(offsets), reverse=True), "each event once, newest first"


async def token_expired_closes(stack: Stack) -> float:
    """``realtime_disconnects_total{reason="token_expired"}``, summed over transports."""
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(stack.url("realtime") + "/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("realtime_disconnects_total{") and 'reason="token_expired"' in line
    )


async def sign_in(page: Page, stack: Stack, name: str) -> str:
    """Registers a new account named ``name`` on the page, logs in, waits until live; its e-mail."""
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(stack.url("gateway") + "/console")
    register = page.locator("#register-form")
    await register.get_by_label("E-mail").fill(email)
    await register.get_by_label("Password").fill("long enough")
    await register.get_by_label("Full name").fill(name)
    await register.get_by_role("button", name="Register").click()
    await expect(page.locator("#status")).to_contain_text(f"Registered {email}")
    login = page.locator("#login-form")
    await login.get_by_label("Password").fill("long enough")
    await login.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LIVE)
    return email


async def test_two_people_talk_in_a_room_and_see_each_other_come_and_go(
    console_stack: Stack, tmp_path: Path
) -> None:
    chromium = require_tool("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            ada = await browser.new_page(viewport={"width": 1280, "height": 1000})
            grace = await browser.new_page(viewport={"width": 1280, "height": 1000})
            uncaught: list[str] = []
            for page in (ada, grace):
                page.on("pageerror", lambda error: uncaught.append(str(error)))
            try:
                await talk(ada, grace, console_stack)
            except BaseException:
                await ada.screenshot(path=tmp_path / "rooms-ada.png", full_page=True)
                if not grace.is_closed():
                    await grace.screenshot(path=tmp_path / "rooms-grace.png", full_page=True)
                raise
            assert uncaught == []
        finally:
            await browser.close()


async def talk(ada: Page, grace: Page, stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        paths = (await client.get(stack.url("gateway") + "/openapi.json")).json()["paths"]
    for path in ("/api/v1/rooms", "/api/v1/rooms/{room_id}/messages", "/api/v1/rooms/{room_id}/presence"):
        assert path in paths, "the aggregated document lists the rooms API"
    assert "/api/v1/broadcasts" in paths
    room_name = f"Tea {uuid.uuid4().hex[:6]}"
    await sign_in(ada, stack, "Ada")
    rooms = ada.locator("#room-form")
    await rooms.get_by_label("Name").fill(room_name)
    await rooms.get_by_label("Topic").fill("Oolong")
    await rooms.get_by_role("button", name="Create room").click()
    await expect(ada.locator("#room-name")).to_have_text(room_name)
    await expect(ada.locator("#room-presence")).to_have_text("Ada", timeout=LIVE)

    await sign_in(grace, stack, "Grace")
    entry = grace.locator("#rooms li").filter(has_text=room_name)
    await entry.get_by_role("button", name="Join").click()
    await expect(grace.locator("#room-presence")).to_have_text("Ada, Grace", timeout=LIVE)
    joined = ada.locator('#room-messages li.presence[data-action="join"]')
    await expect(joined).to_have_text("Grace joined", timeout=LIVE)
    await expect(ada.locator("#room-presence")).to_have_text("Ada, Grace")

    for page, text in ((ada, "Hello, Grace"), (grace, "Hello, Ada"), (ada, "Tea?")):
        await page.locator("#say-form").get_by_label("Message").fill(text)
        await page.locator("#say-form").get_by_role("button", name="Send").click()
    seen = []
    for page in (ada, grace):
        messages = page.locator("#room-messages li.message")
        await expect(messages).to_have_count(3, timeout=LIVE)
        seen.append(await messages.locator(".text").all_text_contents())
    assert seen[0] == seen[1]
    assert sorted(seen[0]) == sorted(["Hello, Grace", "Hello, Ada", "Tea?"])

    await grace.close()
    left = ada.locator('#room-messages li.presence[data-action="leave"]')
    await expect(left).to_have_text("Grace left", timeout=LIVE)
    await expect(ada.locator("#room-presence")).to_have_text("Ada")
