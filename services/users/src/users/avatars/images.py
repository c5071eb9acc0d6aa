"""What an uploaded avatar must be, judged by its bytes and by Pillow, and what is kept of it.

OWASP's file-upload sheet and GitHub's avatars: the declared type counts for nothing, the magic
bytes say what the file claims to be, Pillow must agree and decode it whole, and what is stored is a
new image made from the pixels only (at most 256x256, WebP), so no metadata, trailing payload or
second format of a polyglot survives.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from shared.errors import AppError, ValidationFailed

MAX_BYTES = 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 256
CONTENT_TYPE = "image/webp"

# Magic bytes -> the Pillow format that must agree with them.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


class UnsupportedImage(AppError):
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"


def _invalid(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, [{"loc": ["body", "file"], "msg": detail, "type": "value_error"}])


def sniff(data: bytes) -> str:
    """The format the bytes claim to be (PNG, JPEG, GIF or WEBP), or 415."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise UnsupportedImage("An avatar must be a PNG, JPEG, WebP or GIF image.")


def reencode(data: bytes) -> bytes:
    """The avatar to store: decoded, checked, cut to MAX_SIDE and re-encoded from its pixels alone.

    Raises 415 for what is not one of the four types, 422 for an image too large in pixels or one
    that does not decode.
    """
    kind = sniff(data)
    with warnings.catch_warnings():
        # Pillow's decompression-bomb guard warns first and raises at twice its limit; both refuse here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise _invalid(f"The image has more than {MAX_PIXELS // 1_000_000} megapixels.")
                image.seek(0)  # a GIF's first frame
                image.load()
                upright = ImageOps.exif_transpose(image)
                pixels = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _invalid(f"The image has more than {MAX_PIXELS // 1_000_000} megapixels.") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            # Truncated, corrupt, or not what its magic bytes claim (Pillow's decoders raise these).
            raise _invalid("The image could not be decoded.") from exc
    pixels.thumbnail((MAX_SIDE, MAX_SIDE))
    # A new image holds the pixels and nothing else: no EXIF, ICC, XMP, comments or trailing bytes.
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
