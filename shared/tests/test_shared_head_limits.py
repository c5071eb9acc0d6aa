"""Request-head limits of every component's server (contract section 3), on a real uvicorn server.

Each case speaks raw HTTP over a socket, since an HTTP client would refuse to send such heads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from shared.service.settings import BaseServiceSettings
from shared.web.app import create_base_app
from shared.web.head_limits import MAX_HEAD_BYTES, MAX_HEADER_FIELDS
from shared.web.server import uvicorn_options


def echo_app() -> FastAPI:
    app = create_base_app(title="echo")

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return app


@contextmanager
def server(**overrides: Any) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    options = {**uvicorn_options(BaseServiceSettings(), port=port), **overrides}
    options.pop("loop")  # the default loop in a thread; uvloop changes nothing here
    instance = uvicorn.Server(uvicorn.Config(echo_app(), **options))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(10)
        sock.close()


def exchange(port: int, head: bytes, *, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send ``head`` (and ``body``), then read until the server closes or ``timeout`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        with contextlib.suppress(OSError):  # closed while we were still sending: what limits are for
            conn.sendall(head + body)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def head(*lines: str) -> bytes:
    return ("\r\n".join(["POST /echo HTTP/1.1", "Host: test", *lines]) + "\r\n\r\n").encode()


def test_a_head_over_16_kib_gets_431_and_the_rest_is_not_read() -> None:
    with server() as port, socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ")
        sent = 0
        chunk = b"a" * 65536
        try:
            # 64 MiB offered; the server answers and closes long before it has read them.
            for _ in range(1024):
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        answer = b""
        try:
            while part := conn.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 32 * 1024 * 1024


def test_more_than_100_fields_get_431() -> None:
    fields = [f"X-F{i}: v" for i in range(MAX_HEADER_FIELDS + 1)]
    with server() as port:
        answer = exchange(port, head("Content-Length: 2", *fields), body=b"{}")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_head_just_within_the_limits_is_served_with_its_body() -> None:
    fields = [f"X-F{i}: v" for i in range(MAX_HEADER_FIELDS - 5)]
    fixed = ["Content-Length: 8", "Content-Type: application/json", "Connection: close", *fields]
    pad = "p" * (MAX_HEAD_BYTES - len(head(*fixed, "X-Pad: ")))
    whole = head(*fixed, f"X-Pad: {pad}")
    assert len(whole) == MAX_HEAD_BYTES
    with server() as port:
        answer = exchange(port, whole, body=b'{"a": 1}')
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(b'{"a":1}')


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: te"], ids=["nothing", "half a head"])
def test_a_head_not_complete_in_time_closes_the_connection(sent: bytes) -> None:
    # The same protocol with a short timeout, so the test does not wait the 10 s of production.
    protocol = uvicorn_options(BaseServiceSettings(), port=0)["http"]
    quick = type("QuickHeads", (protocol,), {"head_timeout": 0.3})
    with server(http=quick) as port:
        # A server that never closes makes ``exchange`` raise TimeoutError after 60 s.
        answer = exchange(port, sent, timeout=60)
    assert answer == b""


def test_the_head_timer_starts_again_for_each_request_on_a_kept_alive_connection() -> None:
    protocol = uvicorn_options(BaseServiceSettings(), port=0)["http"]
    quick = type("QuickHeads", (protocol,), {"head_timeout": 0.5})
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    with server(http=quick) as port, socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        for _ in range(3):
            conn.sendall(request)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
        # Idle between requests is the keep-alive's business (75 s), not the head timer's.
        time.sleep(0.8)
        conn.sendall(request)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert conn.recv(65536) == b""
