"""Limits on a request head (request line and headers) that uvicorn's httptools protocol lacks.

Contract section 3: a head over 16 KiB or over 100 header fields gets 431 and the connection is
closed without the rest being read; a head not complete within 10 s closes the connection.

uvicorn's h11 protocol has ``h11_max_incomplete_event_size`` (it answers 400, not 431), but its
httptools protocol, which every component uses for speed, has no knob at all: httptools joins each
header value with ``bytes +=`` as the pieces arrive, so one 64 MiB header held the gateway's event
loop for 9 s and took 100 MiB (``bench/hostile_heads.py``), and a client that never finished its
head was held forever. This subclass counts the bytes of the head before they reach the parser, counts
the fields as they are parsed, and arms a timer from a head's first byte to its end.
"""

from __future__ import annotations

import asyncio
import http

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 100
HEAD_TIMEOUT = 10.0

_END_OF_HEAD = b"\r\n\r\n"


class _TooManyFields(Exception):
    """Raised inside the parser's callback: httptools stops parsing and uvicorn asks for a 400."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head limits above (also in force before a WebSocket upgrade)."""

    # Class attributes so a test (or an operator's fork) can narrow them on a subclass.
    max_head_bytes = MAX_HEAD_BYTES
    max_header_fields = MAX_HEADER_FIELDS
    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._head_fields = 0
        self._head_tail = b""  # the last bytes seen, for an end of head split over two reads
        self._awaiting_head = True
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        # An idle new connection is a head that has not arrived yet.
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            if self._head_timer is None:
                self._arm_head_timer()  # the first byte of the next head on a kept-alive connection
            if self._head_bytes + len(data) > self.max_head_bytes and not self._head_ends_in_time(data):
                self._refuse()
                return
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data)[-3:]
        super().data_received(data)

    def _head_ends_in_time(self, data: bytes) -> bool:
        """Whether the head ends in ``data`` before the limit (the rest of ``data`` is its body)."""
        end = (self._head_tail + data).find(_END_OF_HEAD)
        if end < 0:
            return False
        return self._head_bytes - len(self._head_tail) + end + len(_END_OF_HEAD) <= self.max_head_bytes

    # Parser callbacks (called by httptools inside ``data_received``).
    def on_message_begin(self) -> None:
        self._head_fields = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.max_header_fields:
            self._refused = True
            raise _TooManyFields
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # Whatever arrives from now on is the next head (pipelined or after a keep-alive pause).
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_tail = b""
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers a parser error with 400; a field over the count raised it on purpose.
        if self._refused:
            self._refuse()
            return
        super().send_400_response(msg)

    def _refuse(self) -> None:
        """431 and close, leaving the rest of the head unread."""
        self._refused = True
        self._cancel_head_timer()
        self.transport.pause_reading()
        phrase = http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE.phrase
        body = f"The request head exceeds {self.max_head_bytes} bytes or {self.max_header_fields} fields."
        self.transport.write(
            f"HTTP/1.1 431 {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode("ascii")
        )
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still going out; a pipelined head waits for it, not for the client
        self.transport.close()
