"""Reading an avatar upload: a multipart form with one ``file`` part, or the raw image as the body.

The body is read as a stream and refused (413) the moment it passes the limit, so a client cannot
make the service hold more than that; the multipart form is then parsed from what was read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from shared.errors import PayloadTooLarge, ValidationFailed
from users.avatars.images import MAX_BYTES, UnsupportedImage

# Room for the multipart boundaries and part headers around an image of MAX_BYTES.
MULTIPART_OVERHEAD = 16 * 1024


async def _read_capped(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"An avatar may be at most {MAX_BYTES // 1024} KiB.")
    return bytes(body)


def _invalid(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, [{"loc": ["body", "file"], "msg": detail, "type": "value_error"}])


async def read_image(request: Request) -> bytes:
    """The uploaded image's bytes (at most MAX_BYTES), whichever way it was sent."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        if not content_type.startswith("image/"):
            raise UnsupportedImage(
                "Send the image as multipart/form-data (a 'file' part) or as an image/* body."
            )
        data = await _read_capped(request, MAX_BYTES)
    else:
        data = await _file_part(request, await _read_capped(request, MAX_BYTES + MULTIPART_OVERHEAD))
    if not data:
        raise _invalid("The image is empty.")
    return data


async def _file_part(request: Request, body: bytes) -> bytes:
    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, once(), max_files=1, max_fields=0, max_part_size=MAX_BYTES)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise _invalid(f"The form could not be read: {exc.message}") from exc
    try:
        parts = form.getlist("file")
        if len(parts) != 1 or not isinstance(parts[0], UploadFile):
            raise _invalid("The form must hold exactly one 'file' part.")
        data = await parts[0].read()
    finally:
        await form.close()
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"An avatar may be at most {MAX_BYTES // 1024} KiB.")
    return data
