"""The WebSocket tunnel: after both handshakes, the gateway copies bytes instead of relaying messages.

A proxied WebSocket is two connections with the same framing: no extension is negotiated on either
(``permessage-deflate`` is off on both), the subprotocol the client gets is the one the upstream
chose, and RFC 6455 lets a client's masked frame travel on as it is (any mask is a valid mask). So once
the client's handshake is accepted, every byte from the upstream is a byte for the client and the other
way round, as nginx and Envoy tunnel WebSockets. Relaying message by message instead parsed every frame,
queued it, and framed it again: on the rooms bench that was about half of the gateway's CPU, and the
gateway ran a third of a core per 10,000 frames/s (realtime README, "Speed").

What the gateway still does per connection:

- **backpressure** both ways: a side whose socket backs up pauses reading the other side, so a client
  that stops reading stalls its upstream within a few frames (and realtime closes it with 4008);
- **the client's message limit** (16 KiB, contract section 4): the frame headers the client sends are
  read (``FrameCursor``; payloads are never copied or unmasked), and a message over the limit is
  refused with 1009 before its first byte reaches the upstream;
- **closes of its own** at a frame boundary: 1011 when the upstream goes away without a close frame,
  1012 when the gateway shuts down, both ways.

uvicorn owns the client's socket, so the tunnel is a uvicorn WebSocket protocol (``SplicingProtocol``,
the sans-I/O one with one more ASGI message, ``gateway.websocket.splice``): the app (``gateway.websocket``)
checks the token and opens the upstream with ``open_upstream``, then sends that message instead of
``websocket.accept``. The handshakes themselves are the ``websockets`` library's (sans-I/O), on both sides.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, cast

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

# The ASGI scope extension that says the server can splice, and the message that does it.
SPLICE_EXTENSION = "gateway.websocket.splice"
SPLICE_MESSAGE = "gateway.websocket.splice"

# Close codes the gateway sends itself (RFC 6455 7.4.1, IANA registry).
CLOSE_TOO_BIG = 1009
CLOSE_UPSTREAM_GONE = 1011
CLOSE_RESTART = 1012

# Largest handshake answer read from an upstream (its head; a refusal's body is read too, up to this).
MAX_HANDSHAKE_BYTES = 64 * 1024
# Bytes the upstream may send between its handshake answer and the client's acceptance.
EARLY_BYTES = 64 * 1024
# After the gateway closes a side itself, how long that side's buffered bytes may take to drain.
CLOSE_TIMEOUT = 10.0

# Opcodes: 0x8 is a close; it and every opcode above it are control frames, outside any message.
_CLOSE = _FIRST_CONTROL = 0x8


class FrameCursor:
    """Where frames start and end in a stream of RFC 6455 frames (section 5.2), reading headers only.

    ``feed`` returns, for each frame whose header completed in ``data``, its offset in ``data`` (negative
    when the header began in an earlier chunk), opcode, FIN bit and payload length.

    Written here rather than taken from ``websockets``: its parser reads (copies, unmasks) every payload
    to hand over whole frames, which is the per-frame work the tunnel exists to avoid; this reads the
    2-14 header bytes and skips the rest (under 1 µs a frame).
    """

    __slots__ = ("_pending", "_skip", "saw_close")

    def __init__(self) -> None:
        self._pending = b""  # the start of a header split across chunks
        self._skip = 0  # bytes of the current frame still to come
        self.saw_close = False

    @property
    def at_boundary(self) -> bool:
        return not self._skip and not self._pending

    def feed(self, data: bytes) -> list[tuple[int, int, bool, int]]:
        heads: list[tuple[int, int, bool, int]] = []
        base = -len(self._pending)
        if self._pending:
            data, self._pending = self._pending + data, b""
        end = len(data)
        pos = self._skip
        while pos < end:
            if end - pos < 2:
                break
            first, second = data[pos], data[pos + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                header = 4
            elif length == 127:
                header = 10
            size = header + 4 if second & 0x80 else header  # a client's frames carry a masking key
            if end - pos < size:
                break
            if header > 2:
                length = int.from_bytes(data[pos + 2 : pos + header], "big")
            opcode = first & 0x0F
            if opcode == _CLOSE:
                self.saw_close = True
            heads.append((pos + base, opcode, bool(first & 0x80), length))
            pos += size + length
        if pos < end:
            self._pending, self._skip = data[pos:], 0
        else:
            self._skip = pos - end
        return heads


def close_frame(code: int, *, masked: bool) -> bytes:
    """A close frame with ``code`` and no reason, by the ``websockets`` serializer; masked for the
    upstream, which is a server."""
    return Frame(Opcode.CLOSE, Close(code, "").serialize()).serialize(mask=masked)


class UpstreamLink(asyncio.Protocol):
    """The gateway's connection to the upstream: a WebSocket handshake, then bytes for the splice."""

    def __init__(self, handshake: ClientProtocol, headers: list[tuple[str, str]]) -> None:
        self.handshake = handshake
        self.headers = headers
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.open = False
        self.lost = False
        self.early_paused = False
        self._answer_bytes = 0
        self.splice: Splice | None = None

    @property
    def subprotocol(self) -> str | None:
        return self.handshake.subprotocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        request = self.handshake.connect()
        request.headers.update(self.headers)
        self.handshake.send_request(request)
        self.transport.write(b"".join(self.handshake.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            self.splice.from_upstream(data)
            return
        self.buffer += data
        if not self.open:
            self._read_answer()
        elif len(self.buffer) > EARLY_BYTES and self.transport is not None:
            self.transport.pause_reading()  # until the splice starts
            self.early_paused = True

    def _read_answer(self) -> None:
        if self._answer_bytes == 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HANDSHAKE_BYTES:
                    self._fail(InvalidMessage("the upstream's handshake answer is too large"))
                return
            # A 101's head is the whole answer and what follows it is frames, kept as they are; a
            # refusal's body is the parser's to read.
            upto = end + 4 if self.buffer.startswith(b"HTTP/1.1 101 ") else len(self.buffer)
        else:  # a refusal whose body is still coming
            upto = len(self.buffer)
        self._answer_bytes += upto
        self.handshake.receive_data(bytes(self.buffer[:upto]))
        del self.buffer[:upto]
        events = self.handshake.events_received()
        if self.handshake.handshake_exc is not None:
            self._fail(self.handshake.handshake_exc)
        elif events and isinstance(events[0], Response):
            self.open = True
            self.opened.set_result(events[0])
        elif self._answer_bytes > MAX_HANDSHAKE_BYTES:
            self._fail(InvalidMessage("the upstream's handshake answer is too large"))

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        if not self.open:
            self.handshake.receive_eof()
            events = self.handshake.events_received()
            exc = self.handshake.handshake_exc
            if exc is None and not (events and isinstance(events[0], Response)):
                exc = InvalidMessage("the upstream closed the connection during the handshake")
            if exc is not None:
                self._fail(exc)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionResetError("the upstream closed the connection"))
        if self.splice is not None:
            self.splice.upstream_lost()

    def pause_writing(self) -> None:
        if self.splice is not None:
            self.splice.pause(self.splice.client)  # the upstream does not keep up with the client

    def resume_writing(self) -> None:
        if self.splice is not None:
            self.splice.resume(self.splice.client)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_upstream(
    url: str,
    headers: list[tuple[str, str]],
    *,
    subprotocols: list[str] | None,
    timeout: float,
    receive_buffer: int,
) -> UpstreamLink:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete a WebSocket handshake without extensions.

    Raises ``websockets``' ``InvalidStatus`` when the upstream refuses (its answer attached),
    ``InvalidHandshake`` for a malformed answer, ``OSError`` or ``TimeoutError`` when it cannot be reached.
    """
    uri = parse_uri(url)
    handshake = ClientProtocol(
        uri, subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None
    )
    loop = asyncio.get_running_loop()
    link: UpstreamLink | None = None
    try:
        async with asyncio.timeout(timeout):
            _, link = await loop.create_connection(
                lambda: UpstreamLink(handshake, headers),
                uri.host,
                uri.port,
                ssl=ssl.create_default_context() if uri.secure else None,
            )
            await link.opened
    except BaseException:
        if link is not None:
            link.close()
        raise
    assert link.transport is not None
    sock = link.transport.get_extra_info("socket")
    if sock is not None:
        # Fixed instead of auto-tuned (Linux grows it up to net.ipv4.tcp_rmem's maximum, 32 MiB here):
        # what a client that stops reading leaves in the gateway stays small (gateway.websocket).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    return link


class Splice:
    """Bytes both ways between the client's transport and the upstream link, until either side ends."""

    __slots__ = ("client", "closed", "down", "max_message", "message", "up", "upstream")

    def __init__(self, client: asyncio.Transport, upstream: UpstreamLink, max_message: int) -> None:
        self.client = client
        self.upstream = upstream
        assert upstream.transport is not None
        self.max_message = max_message
        self.down = FrameCursor()  # upstream -> client
        self.up = FrameCursor()  # client -> upstream
        self.message = 0  # payload bytes of the client's current message so far
        self.closed = False

    def start(self) -> None:
        early = bytes(self.upstream.buffer)
        self.upstream.buffer.clear()
        self.upstream.splice = self
        if early:
            self.from_upstream(early)
        if self.upstream.lost:
            self.upstream_lost()
        elif self.upstream.early_paused and not self._backed_up(self.client):
            self.resume(self.upstream.transport)  # it sent more than EARLY_BYTES before the splice

    def from_upstream(self, data: bytes) -> None:
        if not self.closed:
            self.down.feed(data)
            self.client.write(data)

    def from_client(self, data: bytes) -> None:
        if self.closed:
            return
        for offset, opcode, fin, length in self.up.feed(data):
            if opcode < _FIRST_CONTROL:  # a data frame or a continuation: part of the current message
                self.message += length
                if self.message > self.max_message:
                    # Nothing of the offending frame goes on: the upstream is at a frame boundary.
                    self._send_upstream(data[: max(offset, 0)])
                    self.end(CLOSE_TOO_BIG, upstream_at_boundary=offset >= 0)
                    return
                if fin:
                    self.message = 0
        self._send_upstream(data)

    def _send_upstream(self, data: bytes) -> None:
        if data and self.upstream.transport is not None:
            self.upstream.transport.write(data)

    def end(self, code: int, *, upstream_at_boundary: bool | None = None) -> None:
        """The gateway closes both sides itself, with ``code`` wherever a close frame may still go."""
        if self.closed:
            return
        self.closed = True
        if self.down.at_boundary and not self.down.saw_close:
            self.client.write(close_frame(code, masked=False))
        self._close(self.client)
        transport = self.upstream.transport
        if transport is not None:
            clean = self.up.at_boundary if upstream_at_boundary is None else upstream_at_boundary
            if clean and not self.up.saw_close:
                transport.write(close_frame(code, masked=True))
            self._close(transport)

    def upstream_lost(self) -> None:
        if not self.closed:
            # After the upstream's own close frame the client has its code; otherwise it gets 1011.
            self.end(CLOSE_UPSTREAM_GONE)

    def client_lost(self) -> None:
        if not self.closed:
            self.closed = True
            self.upstream.close()

    @staticmethod
    def _close(transport: asyncio.Transport) -> None:
        # close() sends what is buffered first; a peer that never reads it is cut off after a while.
        transport.close()
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)

    @staticmethod
    def _backed_up(transport: asyncio.Transport) -> bool:
        """Past its high-water mark: its protocol was told to pause and will be told to resume."""
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]

    @staticmethod
    def pause(transport: asyncio.Transport | None) -> None:
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    @staticmethod
    def resume(transport: asyncio.Transport | None) -> None:
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


class SplicingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that can hand its connection over to a ``Splice``."""

    splice: Splice | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if hasattr(self, "scope"):  # the handshake was valid and the app is about to be called
            extensions = cast(dict[str, Any], self.scope.setdefault("extensions", {}))
            extensions[SPLICE_EXTENSION] = {}

    async def send(self, message: ASGISendEvent) -> None:
        raw = cast(dict[str, Any], message)
        if raw["type"] != SPLICE_MESSAGE:
            await super().send(message)
            return
        upstream: UpstreamLink = raw["upstream"]
        try:
            await super().send(
                {"type": "websocket.accept", "subprotocol": raw.get("subprotocol"), "headers": []}
            )
        except BaseException:
            upstream.close()
            raise
        if self.disconnected or self.transport.is_closing():
            upstream.close()
            raise ClientDisconnected()
        # No await since the 101 was written: nothing the client sent since has been read yet.
        self.stop_keepalive()  # pings are the upstream's now, and the client's pongs go back to it
        self.splice = Splice(self.transport, upstream, self.config.ws_max_size)
        self.splice.start()

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            self.splice.from_client(data)
        else:
            super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.splice is not None:
            self.splice.pause(self.splice.upstream.transport)  # the client does not keep up

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.splice is not None:
            self.splice.resume(self.splice.upstream.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.splice is not None:
            self.splice.client_lost()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.splice is None:
            super().shutdown()
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": CLOSE_RESTART})
        self.splice.end(CLOSE_RESTART)


def server_options(settings: object = None) -> dict[str, Any]:
    """What uvicorn needs to serve the gateway (``gateway serve``, the tests' gateways): this protocol,
    and no per-message compression, which would frame the client's hop differently from the upstream's."""
    return {"ws": SplicingProtocol, "ws_per_message_deflate": False}
