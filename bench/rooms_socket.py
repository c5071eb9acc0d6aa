"""A bare WebSocket client for the room bench's members: one ``asyncio.Protocol``, no task per socket.

Written here rather than taken from ``websockets`` because the library was measured to be the bench's
own bottleneck: its asyncio client cost 21-27 us of CPU per received frame in the client check
(``rooms_client.py``; a task wakeup and a future per message on top of the parsing), which at the
20,000 frames/s of the target is half a core of the two the servers need. This reads the frames
straight from ``data_received``. It speaks only what the bench needs: the opening handshake, unmasked
server frames (text, continuation, ping answered with pong, close), and masked text frames out.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

OnFrame = Callable[[bytes, int], None]  # payload of a text frame, its arrival (monotonic ns)


class HandshakeFailed(OSError):
    pass


class RawSocket(asyncio.Protocol):
    def __init__(self, on_frame: OnFrame) -> None:
        self.on_frame = on_frame
        self.close_code: int | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16)).decode()
        self._opened = asyncio.get_running_loop().create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._head = True
        self._closing = False
        self._writable = asyncio.Event()
        self._writable.set()

    async def connect(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        await asyncio.get_running_loop().create_connection(lambda: self, host, port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await asyncio.wait_for(asyncio.shield(self._opened), timeout)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def send(self, text: str) -> None:
        """A masked text frame; waits while the server is not reading (its socket buffer is full)."""
        await self._writable.wait()
        self.write(Frame(Opcode.TEXT, text.encode()).serialize(mask=True))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buffer = self._buffer
        buffer += data
        if self._head:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._head = False
            status = head.split(" ", 2)[1] if " " in head else "?"
            if status != "101" or accept_key(self._key) not in head:
                self._opened.set_exception(HandshakeFailed(f"handshake answered {status}"))
                self.abort()
                return
            self._opened.set_result(None)
        while len(buffer) >= 2:
            opcode, fin, length = buffer[0] & 0x0F, buffer[0] & 0x80, buffer[1] & 0x7F
            start = 2
            if length == 126:
                start, length = 4, int.from_bytes(buffer[2:4], "big")
            elif length == 127:
                start, length = 10, int.from_bytes(buffer[2:10], "big")
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            self._frame(opcode, bool(fin), payload, now)

    def _frame(self, opcode: int, fin: bool, payload: bytes, now: int) -> None:
        if opcode in (Opcode.TEXT, Opcode.CONT):
            self._fragments.append(payload)
            if fin:
                whole = b"".join(self._fragments) if len(self._fragments) > 1 else payload
                self._fragments.clear()
                self.on_frame(whole, now)
        elif opcode == Opcode.PING:
            self.write(Frame(Opcode.PONG, payload).serialize(mask=True))
        elif opcode == Opcode.CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self._closing:
                self.write(Frame(Opcode.CLOSE, payload[:2]).serialize(mask=True))
            if self._transport is not None:
                self._transport.close()

    def close(self) -> None:
        """The closing handshake from this side (code 1000); ``closed`` resolves when the server hangs up."""
        if not self._closing and not self.closed.done():
            self._closing = True
            self.write(Frame(Opcode.CLOSE, (1000).to_bytes(2, "big")).serialize(mask=True))

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = 1006
        if not self._opened.done():
            self._opened.set_exception(HandshakeFailed("connection lost during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        self._writable.set()
