"""Avatars: uploaded as a form or a raw body, judged by their bytes, re-encoded without metadata."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from .conftest import Api

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def image_bytes(fmt: str, size: tuple[int, int] = (600, 400), **save: object) -> bytes:
    image = Image.new("RGB", size, (200, 30, 60))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS
    return image_bytes("JPEG", exif=exif.tobytes(), comment=b"where I live")


@pytest.fixture
async def alice(api: Api) -> dict[str, str]:
    await api.register("alice@example.com")
    return await api.bearer("alice@example.com")


async def me(api: Api, headers: dict[str, str]) -> dict[str, object]:
    body: dict[str, object] = (await api.client.get("/api/v1/users/me", headers=headers)).json()
    return body


async def test_a_form_upload_is_re_encoded_small_and_without_metadata(
    api: Api, alice: dict[str, str]
) -> None:
    files = {"file": ("me.jpg", jpeg_with_metadata(), "image/jpeg")}
    response = await api.client.put("/api/v1/users/me/avatar", files=files, headers=alice)
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["avatar_url"] == f"/api/v1/users/{user['id']}/avatar"

    got = await api.client.get(user["avatar_url"], headers=alice)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/webp"
    assert got.headers["cache-control"] == "private, max-age=3600"
    stored = Image.open(io.BytesIO(got.content))
    assert max(stored.size) <= 256
    assert stored.size == (256, 171)
    assert not stored.getexif()
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(stored.info)
    assert b"SecretCam" not in got.content
    assert b"where I live" not in got.content

    etag = got.headers["etag"]
    again = await api.client.get(user["avatar_url"], headers={**alice, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert (
        await api.client.get(user["avatar_url"], headers={**alice, "If-None-Match": '"other"'})
    ).status_code == 200


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
async def test_a_raw_body_upload_of_each_type(api: Api, alice: dict[str, str], fmt: str) -> None:
    body = image_bytes(fmt, (64, 64))
    headers = {**alice, "Content-Type": f"image/{fmt.lower()}"}
    response = await api.client.put("/api/v1/users/me/avatar", content=body, headers=headers)
    assert response.status_code == 200, response.text
    got = await api.client.get(response.json()["avatar_url"], headers=alice)
    assert Image.open(io.BytesIO(got.content)).size == (64, 64)


async def test_an_animated_gif_keeps_its_first_frame(api: Api, alice: dict[str, str]) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    headers = {**alice, "Content-Type": "image/gif"}
    response = await api.client.put("/api/v1/users/me/avatar", content=out.getvalue(), headers=headers)
    got = await api.client.get(response.json()["avatar_url"], headers=alice)
    red, _, blue = Image.open(io.BytesIO(got.content)).convert("RGB").getpixel((16, 16))  # type: ignore[misc]
    assert red > 200
    assert blue < 50


async def test_the_type_is_judged_by_the_bytes_not_the_header(api: Api, alice: dict[str, str]) -> None:
    # A JPEG declared as PNG is a JPEG: accepted.
    headers = {**alice, "Content-Type": "image/png"}
    response = await api.client.put("/api/v1/users/me/avatar", content=image_bytes("JPEG"), headers=headers)
    assert response.status_code == 200


def _bomb() -> bytes:
    # 8000 x 6000 = 48 megapixels of one colour: a few dozen KiB as a PNG.
    out = io.BytesIO()
    Image.new("L", (8000, 6000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


HOSTILE = {
    # A GIF header in front of a script: what a browser might run, not what Pillow can decode.
    "polyglot": (b"GIF89a/*\x00\x00*/=1;alert(document.domain)//" + bytes(64), "image/gif", 422),
    "renamed executable": (b"\x7fELF\x02\x01\x01\x00" + bytes(4096), "image/png", 415),
    "image bomb": (_bomb(), "image/png", 422),
    "truncated image": (image_bytes("PNG", (300, 300), compress_level=0)[:20_000], "image/png", 422),
    "wrong content type": (image_bytes("PNG", (32, 32)), "application/json", 415),
    "oversized body": (b"\x89PNG\r\n\x1a\n" + bytes(MIB), "image/png", 413),
    "empty body": (b"", "image/png", 422),
    "text": (b"hello, not an image", "image/png", 415),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_uploads_get_their_status_and_store_nothing(
    api: Api, alice: dict[str, str], case: str
) -> None:
    body, content_type, expected = HOSTILE[case]
    raw = await api.client.put(
        "/api/v1/users/me/avatar", content=body, headers={**alice, "Content-Type": content_type}
    )
    assert raw.status_code == expected, raw.text
    assert raw.headers["content-type"] == "application/problem+json"
    if expected != 413:
        form = await api.client.put(
            "/api/v1/users/me/avatar", files={"file": ("a.png", body, "image/png")}, headers=alice
        )
        assert form.status_code == (expected if expected != 415 or case != "wrong content type" else 200)
    user = await me(api, alice)
    if user["avatar_url"] is not None:  # only the well-formed PNG sent as a proper form part
        assert case == "wrong content type"
        return
    assert (await api.client.get(f"/api/v1/users/{user['id']}/avatar", headers=alice)).status_code == 404


@pytest.mark.parametrize(
    "files",
    [
        {"other": ("a.png", b"\x89PNG", "image/png")},
        {"file": ("a.txt", b"", "text/plain")},
    ],
)
async def test_a_form_without_one_image_file_part_is_refused(
    api: Api, alice: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> None:
    response = await api.client.put("/api/v1/users/me/avatar", files=files, headers=alice)
    assert response.status_code == 422
    assert (await me(api, alice))["avatar_url"] is None


async def test_two_file_parts_are_refused(api: Api, alice: dict[str, str]) -> None:
    png = image_bytes("PNG", (8, 8))
    files = [("file", ("a.png", png, "image/png")), ("file", ("b.png", png, "image/png"))]
    response = await api.client.put("/api/v1/users/me/avatar", files=files, headers=alice)
    assert response.status_code == 422


async def test_delete_removes_the_avatar_and_is_idempotent(api: Api, alice: dict[str, str]) -> None:
    headers = {**alice, "Content-Type": "image/png"}
    user = (
        await api.client.put("/api/v1/users/me/avatar", content=image_bytes("PNG"), headers=headers)
    ).json()
    for _ in range(2):
        assert (await api.client.delete("/api/v1/users/me/avatar", headers=alice)).status_code == 204
    assert (await api.client.get(f"/api/v1/users/{user['id']}/avatar", headers=alice)).status_code == 404
    assert (await me(api, alice))["avatar_url"] is None


async def test_avatars_need_a_token_and_a_user_without_one_is_404(api: Api, alice: dict[str, str]) -> None:
    png = image_bytes("PNG", (8, 8))
    assert (await api.client.put("/api/v1/users/me/avatar", content=png)).status_code == 401
    assert (await api.client.get(f"/api/v1/users/{uuid.uuid4()}/avatar")).status_code == 401
    assert (await api.client.get(f"/api/v1/users/{uuid.uuid4()}/avatar", headers=alice)).status_code == 404
    assert (await api.client.get("/api/v1/users/nope/avatar", headers=alice)).status_code == 422
