"""The console's account panel in Debian's headless Chromium, through the gateway, on real processes:
a person uploads an avatar and the people in their room see it beside their messages (section 9)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from shared.devstack import COMPONENTS, Stack
from shared.testing.tools import require_tool

from .conftest import free_port
from .test_system_console import CHROMIUM_ARGS, LIVE, sign_in
from .test_system_realtime import launch

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

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
    wanted = ("users", "orders", "notification", "realtime", "gateway")
    stack = Stack(
        database_url=test_database_url,
        amqp_url=test_amqp_url,
        components=[c for c in COMPONENTS if c.name in wanted],
        ports={c.name: free_port() for c in COMPONENTS},
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "APP_ENV": "test",
            "RATE_LIMIT_SCALE": "1000",
            "LOG_LEVEL": "WARNING",
        },
        log_dir=tmp_path_factory.mktemp("console-panels-logs"),
    )
    try:
        launch(stack)
        yield stack
    finally:
        stack.stop_all()


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


async def test_a_refused_upload_says_why_and_keeps_the_avatar_a_new_one_replaces_it(
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
    assert uncaught == []
