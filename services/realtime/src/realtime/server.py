"""uvicorn tuned for many long-lived WebSocket connections (``realtime serve`` and the tests' servers).

The project's settings (``shared.web.server``), plus what uvicorn leaves at defaults that cost memory
per connection: per-message compression off (a zlib context each way is tens of KiB), a small maximum
client message, the sans-I/O WebSocket protocol (timer-driven keepalive, no tasks of its own per
connection) with a synchronous way to send an already-framed message (``FrameWritingProtocol``), and a
deeper accept backlog for reconnect storms.
"""

from __future__ import annotations

from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from realtime.settings import Settings
from shared.web.server import uvicorn_options

# The ASGI scope extension through which a connection reaches its ``FrameWritingProtocol``.
FRAME_WRITER = "realtime.websocket.frame_writer"


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, plus ``write_frame``: a frame encoded once for every
    connection it goes to (``Frame.wire``) is written to the socket at once, with no task, no ASGI
    message and no framing per connection. A room message to 1,000 members is 1,000 of these, and
    through ASGI each one was a task, a message dict, a websockets frame and its serialization: most
    of realtime's CPU per frame on the rooms bench (README, "Speed").
    """

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if hasattr(self, "scope"):  # a valid handshake: the app is about to be called with it
            cast(dict[str, Any], self.scope.setdefault("extensions", {}))[FRAME_WRITER] = self

    def write_frame(self, wire: bytes) -> bool:
        """Send one whole, unmasked server frame now; False (nothing sent) when it cannot go now: the
        socket is backed up, or the connection is not open. The caller then takes the ASGI way, which
        waits for the socket."""
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.conn.state is not State.OPEN
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        # Whole frames only, between whole frames: uvicorn writes everything websockets frames at once.
        self.transport.write(wire)
        return True


def websocket_options(settings: Settings) -> dict[str, Any]:
    return {
        "ws": FrameWritingProtocol,
        "ws_max_size": settings.ws_max_message_size,
        "ws_per_message_deflate": False,
        "ws_ping_interval": settings.ws_keepalive_interval,
        "ws_ping_timeout": settings.ws_keepalive_timeout,
        "backlog": 4096,
    }


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options = uvicorn_options(settings, port=settings.port, **websocket_options(settings))
    options.update(overrides)
    return uvicorn.Config(app, **options)
