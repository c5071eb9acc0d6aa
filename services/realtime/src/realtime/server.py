"""uvicorn tuned for many long-lived WebSocket connections (``realtime serve`` and the tests' servers).

The project's settings (``shared.web.server``), plus what uvicorn leaves at defaults that cost memory
per connection: per-message compression off (a zlib context each way is tens of KiB), a small maximum
client message, the sans-I/O WebSocket protocol (timer-driven keepalive, no tasks of its own per
connection) and a deeper accept backlog for reconnect storms.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from realtime.settings import Settings
from shared.web.server import uvicorn_options


def websocket_options(settings: Settings) -> dict[str, Any]:
    return {
        "ws": "websockets-sansio",
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
