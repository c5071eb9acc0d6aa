"""WebSocket proxying for ``/ws``: the token is checked at the handshake, then frames flow both ways.

The upstream side uses the ``websockets`` client (already installed with uvicorn's standard extras);
the realtime service checks the token again and its close codes (4401, 4008) reach the client as sent.

Backpressure passes through: a frame is read from the upstream only once the previous ones were
handed to the client's connection, and the gateway keeps little of its own in between (a few frames,
a fixed socket receive buffer). A client that stops reading therefore stalls its upstream connection
soon, and the realtime service closes it with 4008 (contract section 4) as it would a direct client,
instead of the gateway soaking up the stream. Measured on the running system: with the library's
default queue and an auto-tuned receive buffer, a stalled client took over 25 MB of events without
the realtime service noticing; with these limits, 8-14 MB, nearly all of it the kernel's send buffers
on the two hops (net.ipv4.tcp_wmem, at most 4 MiB each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gateway.handshake import Refused, deny_websocket
from gateway.headers import query_param, upstream_request_headers
from gateway.runtime import GatewayRuntime
from shared.auth.verifier import bearer_token
from shared.errors import AppError, UpstreamUnavailable
from shared.observability.request_id import current_request_id
from shared.web.client_address import TrustedProxies

log = logging.getLogger(__name__)

# Close codes that may not be sent in a close frame (RFC 6455 7.4.1) and what the client gets instead.
_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}
# The client library makes its own handshake headers; the rest of the client's headers are forwarded.
_HANDSHAKE_HEADERS = frozenset(
    {b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol"}
)
# What one connection may hold in the gateway while its client is not reading (see the docstring):
# frames received but not yet relayed (websockets' default is 16), and the upstream socket's receive
# buffer, fixed instead of auto-tuned (Linux grows it up to net.ipv4.tcp_rmem's maximum, 32 MiB here).
UPSTREAM_QUEUE_FRAMES = 4
UPSTREAM_RECEIVE_BUFFER = 64 * 1024


class WebSocketProxy:
    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        self.trusted = TrustedProxies(runtime.settings.trusted_proxies)
        self.by_template = {route.template: route for route in runtime.table.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.by_template[scope["route_template"]]
        if (await receive())["type"] != "websocket.connect":
            return
        client = scope.get("client")
        forwarded = upstream_request_headers(
            [(n, v) for n, v in scope["headers"] if n not in _HANDSHAKE_HEADERS],
            request_id=(current_request_id() or "").encode("latin-1"),
            client_ip=client[0] if client else None,
            scheme="https" if scope.get("scheme") == "wss" else "http",
            trusted=self.trusted,
        )
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            await self._authenticate(forwarded.authorization, query)
        except AppError as error:
            await deny_websocket(scope, send, error)
            return
        url = route.base_url.replace("http", "ws", 1) + scope["path"] + (f"?{query}" if query else "")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in forwarded.headers]
        try:
            upstream = await connect(
                url,
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                open_timeout=self.runtime.settings.upstream_timeout,
                max_size=self.runtime.settings.max_body_bytes,
                max_queue=UPSTREAM_QUEUE_FRAMES,
                compression=None,
                user_agent_header=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            # The service refused the handshake (its own token check, its connection cap): the client
            # learns the same, with the time to wait when there is one.
            retry_after = exc.response.headers.get("Retry-After")
            await deny_websocket(scope, send, Refused(exc.response.status_code, retry_after=retry_after))
            return
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            log.warning("websocket upstream failed", extra={"upstream": route.upstream, "error": str(exc)})
            unavailable = UpstreamUnavailable(f"The {route.upstream} service cannot be reached.")
            await deny_websocket(scope, send, unavailable)
            return
        _limit_receive_buffer(upstream)
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _relay(receive, send, upstream)

    async def _authenticate(self, authorization: bytes | None, query: str) -> None:
        token = bearer_token(authorization.decode("latin-1") if authorization else None)
        if token is None:
            # Browsers cannot set headers on a WebSocket: the contract allows ?token=.
            token = query_param(query.encode("latin-1"), "token")
        if not token:
            raise Refused(401, "An access token is required.")
        await self.runtime.verifier.verify(token)


def _limit_receive_buffer(upstream: ClientConnection) -> None:
    sock = upstream.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RECEIVE_BUFFER)


async def _client_to_upstream(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "websocket.disconnect":
            code: int = message.get("code") or 1000
            await upstream.close(_RESERVED_CLOSE.get(code, code))
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _upstream_to_client(send: Send, upstream: ClientConnection) -> None:
    # An abnormal close raises instead of ending the loop; either way the close code is read below.
    with contextlib.suppress(ConnectionClosed):
        async for frame in upstream:
            key = "text" if isinstance(frame, str) else "bytes"
            await send({"type": "websocket.send", key: frame})
    code = upstream.close_code or 1000
    await send(
        {
            "type": "websocket.close",
            "code": _RESERVED_CLOSE.get(code, code),
            "reason": upstream.close_reason or "",
        }
    )


async def _relay(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Both directions at once; when one side closes, the other is closed with its code."""
    tasks = (
        asyncio.ensure_future(_client_to_upstream(receive, upstream)),
        asyncio.ensure_future(_upstream_to_client(send, upstream)),
    )
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
