"""Response compression (contract section 3): gzip, or br when the client asks for it, for answers of
1 KiB or more, with ``Vary: Accept-Encoding``; never for event streams, WebSockets or images.

starlette-compress does the work (it streams, skips small and already-encoded answers, sets Vary). Its
list of compressible types is process-wide: ``text/event-stream`` (each event must reach the browser
when it is sent, not when a compressor block fills) and the image types on it are taken off it here.
Images are compressed already (PNG, JPEG, WebP, GIF are not on the list at all).
"""

from __future__ import annotations

from starlette.types import ASGIApp
from starlette_compress import CompressMiddleware, remove_compress_type

MINIMUM_SIZE = 1024
NEVER = ("text/event-stream", "image/svg+xml", "image/bmp", "image/vnd.microsoft.icon", "image/x-icon")


def compressed(app: ASGIApp) -> ASGIApp:
    """``app`` with its HTTP answers compressed; WebSocket scopes pass through untouched."""
    for media_type in NEVER:
        remove_compress_type(media_type)
    # zstd is not in the contract; gzip level and br quality 4 are the library's balance of speed and size.
    return CompressMiddleware(app, minimum_size=MINIMUM_SIZE, zstd=False, brotli=True, gzip=True)
