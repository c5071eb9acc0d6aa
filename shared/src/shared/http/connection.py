"""One keep-alive connection to an upstream: an asyncio protocol driving httptools' response parser."""

from __future__ import annotations

import asyncio
import collections
from typing import cast

import httptools

from shared.http.errors import (
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimedOut,
)

Header = tuple[bytes, bytes]
# A slow reader must not make its process buffer an upstream stream without bound.
_PAUSE_AT, _RESUME_AT = 32, 8


class UpstreamConnection(asyncio.Protocol):
    """Carries one exchange at a time; the pool hands it out and takes it back."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[Header] = []
        self.idle_since = 0.0
        self.nothing_received = True
        self._loop = asyncio.get_running_loop()
        self._chunks: list[bytes] = []
        self._queue: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._chunk_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._error: UpstreamError | None = None
        self._headers_done = self._complete = self._keep_alive = False
        self._head_request = self._streaming = self._closed = self._paused = False

    @property
    def reusable(self) -> bool:
        return self._complete and self._keep_alive and not self._closed and self._error is None

    async def exchange(
        self, head: bytes, body: bytes | None, head_request: bool, timeout: float, stream: bool
    ) -> None:
        """Send a request; return once its answer is complete (or, for ``stream``, its headers are)."""
        transport = self.transport
        if transport is None or self._closed:
            raise UpstreamDisconnected("the upstream connection is closed")
        self.status, self.headers, self._chunks = 0, [], []
        self._headers_done = self._complete = self._keep_alive = False
        self._head_request, self._streaming, self.nothing_received = head_request, stream, True
        self._waiter = waiter = self._loop.create_future()
        self._timer = self._loop.call_later(timeout, self._on_timeout)
        transport.write(head + body if body else head)
        try:
            await waiter
        finally:
            self._timer.cancel()

    def take_body(self) -> bytes:
        chunks, self._chunks = self._chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def next_chunk(self) -> bytes | None:
        """The next piece of a streamed body as soon as it arrives; None at its end."""
        while True:
            if self._queue:
                if self._paused and len(self._queue) <= _RESUME_AT and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return self._queue.popleft()
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            self._chunk_waiter = self._loop.create_future()
            await self._chunk_waiter

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.nothing_received = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"the upstream sent invalid HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._complete or self._waiter is None:
            return
        if self._headers_done and not any(
            n in (b"content-length", b"transfer-encoding") for n, _ in self.headers
        ):
            # A body delimited by the end of the connection (RFC 9112 6.3) has just ended.
            self.on_message_complete()
            return
        self._fail(UpstreamDisconnected("the upstream closed the connection before answering in full"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self._headers_done = True
        if self._head_request:
            # The parser would wait for the body a HEAD answer never has, so this connection ends here.
            self._complete, self._keep_alive = True, False
            self._resolve()
        elif self._streaming:
            self._resolve()

    def on_body(self, body: bytes) -> None:
        if not self._streaming:
            self._chunks.append(body)
            return
        self._queue.append(body)
        self._wake_reader()
        if len(self._queue) >= _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._complete:
            return
        self._complete = True
        self._keep_alive = self.parser.should_keep_alive()
        if self._streaming:
            self._wake_reader()
        else:
            self._resolve()

    # internals

    def _resolve(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _wake_reader(self) -> None:
        if self._chunk_waiter is not None and not self._chunk_waiter.done():
            self._chunk_waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._wake_reader()

    def _on_timeout(self) -> None:
        self._fail(UpstreamTimedOut("the upstream did not answer in time"))
        self.close()
