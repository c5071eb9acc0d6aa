"""Real servers for tests: an ASGI app under uvicorn in a thread of its own, on a free loopback port.

A thread (with its own event loop) rather than a task on the test's loop: a test that blocks its loop,
or a synchronous client, still gets answers, and the server stops when the block ends.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from shared.service.settings import BaseServiceSettings
from shared.web.server import GracefulServer, lifecycle_of, uvicorn_options


@dataclass
class Running:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for bind(0) may be given to
# an outgoing connection before the process it was chosen for binds it ("address already in use", seen
# when a whole stack starts at once). Chosen at random here, it collides only with another such choice.
_SERVER_PORTS = (20000, 32767)


def free_port() -> int:
    """A port nothing listens on right now, outside the range outgoing connections take theirs from."""
    while True:
        port = random.randint(*_SERVER_PORTS)  # noqa: S311 - a port, not a secret
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # taken (or not bindable): draw another
                continue
            return port


def closed_port_url() -> str:
    """A URL on which nothing listens, so connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def bound_socket(port: int = 0, *, send_buffer: int | None = None) -> socket.socket:
    """A socket bound on loopback (port 0: a free one); ``send_buffer`` is inherited by accepted ones."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", port))
    return sock


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    port: int = 0,
    *,
    graceful: bool = False,
    send_buffer: int | None = None,
    **config: Any,
) -> Iterator[Running]:
    """Run ``app`` under uvicorn in a thread of its own until the block ends (port 0: a free one).

    ``graceful``: under ``shared.web.server.GracefulServer``, which tells the app's lifecycle it stops.
    ``send_buffer``: the kernel send buffer of every accepted connection (to make backpressure show).
    """
    sock = bound_socket(port, send_buffer=send_buffer)
    port = sock.getsockname()[1]
    # As shared.web.server.serve runs components: no proxy-header rewriting, no Server header, the same
    # limits on request heads and client frames.
    limits = uvicorn_options(BaseServiceSettings(), port=port)
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 1,
        "proxy_headers": False,
        "server_header": False,
        **{name: limits[name] for name in ("http", "h11_max_incomplete_event_size", "ws_max_size")},
    }
    uvicorn_config = uvicorn.Config(app, **{**options, **config})
    server = (
        GracefulServer(uvicorn_config, lifecycle=lifecycle_of(app))
        if graceful
        else uvicorn.Server(uvicorn_config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    # Started is a condition, not a delay: wait for it, and fail if the thread died first.
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
