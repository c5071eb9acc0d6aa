"""The console's admin and account panels in Debian's headless Chromium, through the gateway, on real
processes: an admin steers the scheduled jobs of every service (contract section 8), a person uploads
an avatar and the people in their room see it beside their messages (section 9)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from shared.devstack import Stack
from shared.testing.jobs import AdminJobs
from shared.testing.tools import require_tool

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from .opsstack import running_stack
from .test_system_console import CHROMIUM_ARGS, LIVE, sign_in

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

SERVICES = ("users", "orders", "notification", "realtime")
PASSWORD = "long enough"  # what sign_in registers with
# A colour the re-encoded avatar keeps closely enough to be told from anything else on the page.
RED = (200, 30, 60)
GREEN = (20, 160, 40)


@pytest.fixture(scope="module")
def stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with running_stack(
        test_database_url,
        test_amqp_url,
        signing_key_file,
        tmp_path_factory.mktemp("console-panels-logs"),
        env={"ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD},
        components=(*SERVICES, "gateway"),
    ) as stack:
        yield stack


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = require_tool("chromium")  # Debian's, never a downloaded browser build
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=10) as client:
        yield client


async def new_page(browser: Browser, uncaught: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    return page


async def bearer(gateway: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": email, "password": password}
    answer = await gateway.post("/api/v1/auth/token", data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def jobs_of(gateway: httpx.AsyncClient, admin: dict[str, str], service: str) -> dict[str, Any]:
    answer = await gateway.get(f"/api/v1/admin/jobs/{service}", headers=admin)
    assert answer.status_code == 200, answer.text
    return {job["name"]: job for job in answer.json()["items"]}


def png(size: tuple[int, int] = (64, 64), colour: tuple[int, int, int] = RED) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


async def shows_an_image(badge: Locator, colour: tuple[int, int, int] | None = None) -> None:
    """Waits until the badge holds an image the browser decoded (not just an <img> that failed), whose
    middle pixel, when ``colour`` is given, is that colour (within what WebP's re-encoding changes)."""
    image = badge.locator("img")
    await expect(image).to_have_count(1, timeout=LIVE)
    handle = await image.element_handle()
    await badge.page.wait_for_function(
        """([img, colour]) => {
            if (!img.complete || img.naturalWidth === 0) return false;
            if (colour === null) return true;
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const context = canvas.getContext("2d");
            context.drawImage(img, 0, 0);
            const middle = context.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data;
            return colour.every((value, i) => Math.abs(middle[i] - value) <= 12);
        }""",
        arg=[handle, colour],
        timeout=LIVE,
    )


# ---- the jobs panel (issue 13, contract section 8) ------------------------------------------------


async def test_an_admin_sees_pauses_resumes_and_runs_the_jobs_of_every_service(
    stack: Stack, browser: Browser, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    uncaught: list[str] = []
    page = await new_page(browser, uncaught)
    try:
        await steer_jobs(page, stack, gateway)
    except BaseException:
        await page.screenshot(path=tmp_path / "jobs-failure.png", full_page=True)
        raise
    assert uncaught == []


async def log_in(page: Page, stack: Stack, email: str, password: str) -> None:
    await page.goto(stack.url("gateway") + "/console")
    login = page.locator("#login-form")
    await login.get_by_label("E-mail").fill(email)
    await login.get_by_label("Password").fill(password)
    await login.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LIVE)


async def steer_jobs(page: Page, stack: Stack, gateway: httpx.AsyncClient) -> None:
    admin = await bearer(gateway, ADMIN_EMAIL, ADMIN_PASSWORD)
    await log_in(page, stack, ADMIN_EMAIL, ADMIN_PASSWORD)
    panel = page.locator("#jobs-panel")
    await expect(panel).to_be_visible()

    # Every job of every service, as the API lists them, with its schedule.
    for service in SERVICES:
        listed = await jobs_of(gateway, admin, service)
        assert listed, f"{service} lists no jobs"
        rows = panel.locator(f'[data-service="{service}"] tbody tr')
        await expect(rows).to_have_count(len(listed), timeout=LIVE)
        for name, job in listed.items():
            row = rows.and_(page.locator(f'[data-job="{name}"]'))
            await expect(row.locator(".schedule")).to_have_text(job["schedule"])
    expected = {"purge-refresh-tokens", "expire-unpaid-orders", "daily-report", "trim-rooms"}
    shown = set(await panel.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)"))
    assert expected <= shown

    # Pause and resume one: the page shows what the API then says.
    job = panel.locator('[data-service="orders"] tr[data-job="purge-idempotency-keys"]')
    await expect(job).to_have_attribute("data-paused", "false")
    await job.get_by_role("button", name="Pause").click()
    await expect(job).to_have_attribute("data-paused", "true")
    await expect(job.locator(".next-run")).to_have_text("paused")
    paused = (await jobs_of(gateway, admin, "orders"))["purge-idempotency-keys"]
    assert (paused["paused"], paused["next_run_at"]) == (True, None)
    await job.get_by_role("button", name="Resume").click()
    await expect(job).to_have_attribute("data-paused", "false")
    resumed = (await jobs_of(gateway, admin, "orders"))["purge-idempotency-keys"]
    assert resumed["paused"] is False
    assert resumed["next_run_at"] is not None

    # A new schedule: one the API refuses says why and changes nothing; one it takes is shown.
    default = resumed["schedule"]
    await job.get_by_role("button", name="Schedule").click()
    field = job.get_by_label("New schedule of orders/purge-idempotency-keys")
    await expect(field).to_have_value(default)
    await field.fill("61 * * * *")
    await job.get_by_role("button", name="Save").click()
    await expect(page.locator("#status")).to_contain_text("not a valid cron expression", timeout=LIVE)
    await expect(field).to_have_value("61 * * * *")
    assert (await jobs_of(gateway, admin, "orders"))["purge-idempotency-keys"]["schedule"] == default
    await field.fill("*/30 * * * *")
    await job.get_by_role("button", name="Save").click()
    await expect(job.locator(".schedule")).to_have_text("*/30 * * * *", timeout=LIVE)
    assert (await jobs_of(gateway, admin, "orders"))["purge-idempotency-keys"]["schedule"] == "*/30 * * * *"
    await job.get_by_role("button", name="Schedule").click()
    await job.get_by_role("button", name="Cancel").click()
    await expect(job.locator(".schedule")).to_have_text("*/30 * * * *")
    put_back = await gateway.put(
        "/api/v1/admin/jobs/orders/purge-idempotency-keys/schedule", json={"schedule": default}, headers=admin
    )
    assert put_back.status_code == 200, put_back.text

    # Run one now: its last run appears, finished, and it is the run the API recorded as manual.
    # Held through the API first: realtime runs trim-rooms every 5 minutes on the wall clock, and a
    # scheduled run would make the button's run a 409 or take the row's last run from it.
    trim_rooms = AdminJobs(gateway, admin, "realtime")
    await trim_rooms.hold("trim-rooms")
    job = panel.locator('[data-service="realtime"] tr[data-job="trim-rooms"]')
    before = await job.get_attribute("data-last-run-id")
    await job.get_by_role("button", name="Run").click()
    await expect(page.locator("#status")).to_contain_text("realtime/trim-rooms: run ", timeout=LIVE)
    await expect(page.locator("#status")).to_contain_text(" succeeded.", timeout=LIVE)
    await expect(job).not_to_have_attribute("data-last-run-id", before or "", timeout=LIVE)
    await expect(job).to_have_attribute("data-last-status", "succeeded")
    await expect(job.locator(".last-run .job-status")).to_have_text("succeeded")
    run_id = await job.get_attribute("data-last-run-id")
    runs = await gateway.get("/api/v1/admin/jobs/realtime/trim-rooms/runs", headers=admin)
    run = next(r for r in runs.json()["items"] if r["id"] == run_id)
    assert (run["trigger"], run["status"]) == ("manual", "succeeded")

    # Its history shows that run, newest first (a scheduled run may have started since); a second
    # click folds it away.
    history_button = job.get_by_role("button", name="History")
    await history_button.click()
    history = panel.locator('[data-service="realtime"] tr.job-history[data-history-of="trim-rooms"]')
    manual_run = history.locator(f'tr[data-run-id="{run_id}"]')
    await expect(manual_run.locator(".trigger")).to_have_text("manual", timeout=LIVE)
    await expect(manual_run.locator(".job-status")).to_have_text("succeeded")
    await expect(history_button).to_have_attribute("aria-expanded", "true")
    started = await history.locator("tr[data-run-id] td:first-child time").evaluate_all(
        "times => times.map(t => t.dateTime)"
    )
    assert started == sorted(started, reverse=True)
    await history_button.click()
    await expect(history).to_have_count(0)
    resumed_trim = await gateway.post("/api/v1/admin/jobs/realtime/trim-rooms/resume", headers=admin)
    assert resumed_trim.status_code == 200, resumed_trim.text

    # A service that cannot answer says so in its own group, as the problem's text; the others stay.
    await asyncio.to_thread(stack.stop, "notification")
    try:
        await panel.get_by_role("button", name="Refresh").click()
        failed = panel.locator('[data-service="notification"] .error')
        await expect(failed).to_be_visible(timeout=LIVE)
        await expect(failed).to_contain_text("The notification service")
        await expect(panel.locator('[data-service="notification"] tbody tr')).to_have_count(0)
        await expect(panel.locator('[data-service="users"] tbody tr')).not_to_have_count(0)
    finally:
        await asyncio.to_thread(stack.start, "notification")
        await asyncio.to_thread(stack.wait_ready, "notification")
    await panel.get_by_role("button", name="Refresh").click()
    await expect(panel.locator('[data-service="notification"] .error')).to_be_hidden()
    await expect(panel.locator('[data-service="notification"] tbody tr')).not_to_have_count(0)


async def test_a_user_sees_no_jobs_panel_and_the_api_refuses_them(
    stack: Stack, browser: Browser, gateway: httpx.AsyncClient
) -> None:
    uncaught: list[str] = []
    page = await new_page(browser, uncaught)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    email = await sign_in(page, stack, "Grace")
    await expect(page.locator("#jobs-panel")).to_be_hidden()
    await expect(page.locator("#jobs > *")).to_have_count(0)
    assert not [url for url in asked if "/api/v1/admin/" in url], "the page asked for jobs it cannot see"
    user = await bearer(gateway, email, PASSWORD)
    for service in SERVICES:
        refused = await gateway.get(f"/api/v1/admin/jobs/{service}", headers=user)
        assert refused.status_code == 403, (service, refused.text)
        run = await gateway.post(f"/api/v1/admin/jobs/{service}/purge-outbox/run", headers=user)
        assert run.status_code == 403, (service, run.text)
    assert uncaught == []


# ---- avatars (issue 14, contract section 9) -------------------------------------------------------


async def upload(page: Page, path: Path) -> None:
    form = page.locator("#avatar-form")
    await form.get_by_label("Avatar").set_input_files(path)
    await form.get_by_role("button", name="Upload avatar").click()


async def test_an_avatar_uploaded_in_the_console_is_seen_in_the_account_area_and_by_the_room(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    uncaught: list[str] = []
    ada = await new_page(browser, uncaught)
    grace = await new_page(browser, uncaught)
    try:
        await share_an_avatar(ada, grace, stack, tmp_path)
    except BaseException:
        for name, page in (("ada", ada), ("grace", grace)):
            await page.screenshot(path=tmp_path / f"avatars-{name}.png", full_page=True)
        raise
    assert uncaught == []


async def share_an_avatar(ada: Page, grace: Page, stack: Stack, tmp_path: Path) -> None:
    await sign_in(ada, stack, "Ada Lovelace")
    # No avatar yet: initials, no image.
    mine = ada.locator("#me-avatar .avatar")
    await expect(mine).to_have_attribute("data-initials", "AL")
    await expect(mine.locator("img")).to_have_count(0)
    picture = tmp_path / "ada.png"
    picture.write_bytes(png())
    await upload(ada, picture)
    await expect(ada.locator("#status")).to_have_text("Avatar updated.", timeout=LIVE)
    for badge in (mine, ada.locator("#account-avatar .avatar")):
        await shows_an_image(badge, RED)
    ada_id = await mine.get_attribute("data-user-id")
    assert ada_id

    room_name = f"Portraits {uuid.uuid4().hex[:6]}"
    rooms = ada.locator("#room-form")
    await rooms.get_by_label("Name").fill(room_name)
    await rooms.get_by_role("button", name="Create room").click()
    await expect(ada.locator("#room-presence")).to_have_text("Ada Lovelace", timeout=LIVE)

    # Markup in a name stays text, in the initials too.
    grace_name = 'Grace <img src=x onerror="window.pwned = 1">'
    await sign_in(grace, stack, grace_name)
    await grace.locator("#rooms li").filter(has_text=room_name).get_by_role("button", name="Join").click()
    await expect(grace.locator("#room-presence")).to_have_text(f"Ada Lovelace, {grace_name}", timeout=LIVE)
    await ada.locator("#say-form").get_by_label("Message").fill("Do you like it?")
    await ada.locator("#say-form").get_by_role("button", name="Send").click()
    await grace.locator("#say-form").get_by_label("Message").fill("Very much")
    await grace.locator("#say-form").get_by_role("button", name="Send").click()

    # Grace sees Ada's avatar beside Ada's message and in the presence list; her own shows initials.
    from_ada = grace.locator(f'#room-messages li.message[data-user-id="{ada_id}"]')
    await expect(from_ada.locator(".text")).to_have_text("Do you like it?", timeout=LIVE)
    await shows_an_image(from_ada.locator(".avatar"), RED)
    present = grace.locator(f'#room-presence .person[data-user-id="{ada_id}"] .avatar')
    await shows_an_image(present, RED)
    from_grace = grace.locator("#room-messages li.message").filter(has_text="Very much")
    await expect(from_grace.locator(".avatar")).to_have_attribute("data-initials", "G<", timeout=LIVE)
    await expect(from_grace.locator(".avatar img")).to_have_count(0)
    # Ada sees her own avatar beside her message, and Grace's initials beside Grace's.
    await shows_an_image(ada.locator(f'#room-messages li.message[data-user-id="{ada_id}"] .avatar'), RED)
    await expect(
        ada.locator("#room-messages li.message").filter(has_text="Very much").locator(".avatar")
    ).to_have_attribute("data-initials", "G<", timeout=LIVE)
    for page in (ada, grace):
        assert await page.locator("img").count() == await page.locator(".avatar img").count()
        assert await page.evaluate("window.pwned === undefined")


async def test_a_refused_upload_says_why_a_new_avatar_replaces_the_old_and_removing_it_shows_initials(
    stack: Stack, browser: Browser, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    uncaught: list[str] = []
    page = await new_page(browser, uncaught)
    email = await sign_in(page, stack, "Ada Byron")
    first = tmp_path / "first.png"
    first.write_bytes(png())
    await upload(page, first)
    await expect(page.locator("#status")).to_have_text("Avatar updated.", timeout=LIVE)
    user = await bearer(gateway, email, PASSWORD)
    me = (await gateway.get("/api/v1/users/me", headers=user)).json()
    assert me["avatar_url"] == f"/api/v1/users/{me['id']}/avatar"
    stored = (await gateway.get(me["avatar_url"], headers=user)).content

    whole = png((128, 128), GREEN)
    cases = {
        # A renamed executable: the name and the part's type say PNG, the bytes do not (415).
        "setup.png": (b"MZ\x90\x00\x03" + bytes(2000), "An avatar must be a PNG, JPEG, WebP or GIF image."),
        # A PNG cut short: it does not decode (422, the field's message).
        "cut.png": (whole[: len(whole) // 2], "file: The image could not be decoded."),
        # Over the 1 MiB limit (413 at the gateway, before any service reads it).
        "huge.png": (whole + bytes(1024 * 1024), "1048576 bytes"),
    }
    for name, (content, says) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        await upload(page, path)
        status = page.locator("#status")
        await expect(status).to_contain_text(says, timeout=LIVE)
        await expect(status).to_have_class("status error")
        # The page still shows the avatar it had, and the server still holds it.
        await shows_an_image(page.locator("#account-avatar .avatar"), RED)
        assert (await gateway.get(me["avatar_url"], headers=user)).content == stored, name

    # A new avatar replaces the old one on the page (not the browser's cached copy of the old one).
    green = tmp_path / "green.png"
    green.write_bytes(whole)
    await upload(page, green)
    await expect(page.locator("#status")).to_have_text("Avatar updated.", timeout=LIVE)
    for badge in (page.locator("#account-avatar .avatar"), page.locator("#me-avatar .avatar")):
        await shows_an_image(badge, GREEN)

    # Removed: initials again, here and on the server.
    await page.get_by_role("button", name="Remove avatar").click()
    await expect(page.locator("#status")).to_have_text("Avatar removed.", timeout=LIVE)
    await expect(page.locator("#account-avatar .avatar img")).to_have_count(0)
    await expect(page.locator("#me-avatar .avatar")).to_have_attribute("data-initials", "AB")
    await expect(page.get_by_role("button", name="Remove avatar")).to_be_hidden()
    assert (await gateway.get("/api/v1/users/me", headers=user)).json()["avatar_url"] is None
    assert (await gateway.get(me["avatar_url"], headers=user)).status_code == 404
    assert uncaught == []
