"""WebSocket proxying for ``/ws`` and ``/graphql``: the token is checked at the handshake, then the
connection is spliced to the upstream's (``gateway.splice``): bytes flow both ways, frames untouched.

The realtime service checks the token again, and its frames and close codes (4401, 4008) reach the
client as sent: the gateway adds no queue, no framing and no keepalive of its own.

Backpressure passes through: the gateway stops reading one side while the other side's socket is
backed up, and keeps little in between (a transport's write buffer, a fixed socket receive buffer). A
client that stops reading therefore stalls its upstream connection soon, and the realtime service
closes it with 4008 (contract section 4) as it would a direct client, instead of the gateway soaking
up the stream. Measured on the running system with the frame-by-frame relay this replaced: with an
auto-tuned receive buffer, a stalled client took over 25 MB of events without the realtime service
noticing; with the fixed one, 8-14 MB, nearly all of it the kernel's send buffers on the two hops
(net.ipv4.tcp_wmem, at most 4 MiB each). The splice keeps that fixed buffer and holds less itself
(``test_gateway_websocket_backpressure``).
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send
from websockets.exceptions import InvalidHandshake, InvalidStatus

from gateway.handshake import Refused, deny_websocket
from gateway.headers import query_param, upstream_request_headers
from gateway.runtime import GatewayRuntime
from gateway.splice import SPLICE_EXTENSION, SPLICE_MESSAGE, UpstreamLink, open_upstream
from shared.auth.verifier import bearer_token
from shared.errors import AppError, UpstreamUnavailable
from shared.observability.request_id import current_request_id
from shared.web.client_address import TrustedProxies

log = logging.getLogger(__name__)

# The client's handshake headers that are its own hop's: the gateway makes its own for the upstream.
_HANDSHAKE_HEADERS = frozenset(
    {b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol"}
)
# The upstream socket's receive buffer, fixed instead of auto-tuned (Linux grows it up to
# net.ipv4.tcp_rmem's maximum, 32 MiB here): what a stalled client leaves in the gateway stays small.
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
        if SPLICE_EXTENSION not in scope.get("extensions", {}):
            raise RuntimeError(
                "the gateway must be served with gateway.splice.SplicingProtocol (gateway serve)"
            )
        url = route.base_url.replace("http", "ws", 1) + scope["path"] + (f"?{query}" if query else "")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in forwarded.headers]
        try:
            upstream = await open_upstream(
                url,
                headers,
                subprotocols=scope.get("subprotocols") or None,
                timeout=self.runtime.settings.upstream_timeout,
                receive_buffer=UPSTREAM_RECEIVE_BUFFER,
            )
        except InvalidStatus as exc:
            # The service refused the handshake (its own token check, its connection cap): the client
            # learns the same, with the time to wait when there is one.
            retry_after = exc.response.headers.get("Retry-After")
            log.debug(
                "websocket upstream refused",
                extra={"upstream": route.upstream, "status": exc.response.status_code},
            )
            await deny_websocket(scope, send, Refused(exc.response.status_code, retry_after=retry_after))
            return
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            log.warning("websocket upstream failed", extra={"upstream": route.upstream, "error": str(exc)})
            unavailable = UpstreamUnavailable(f"The {route.upstream} service cannot be reached.")
            await deny_websocket(scope, send, unavailable)
            return
        await _splice(receive, send, upstream)

    async def _authenticate(self, authorization: bytes | None, query: str) -> None:
        token = bearer_token(authorization.decode("latin-1") if authorization else None)
        if token is None:
            # Browsers cannot set headers on a WebSocket: the contract allows ?token=.
            token = query_param(query.encode("latin-1"), "token")
        if not token:
            raise Refused(401, "An access token is required.")
        await self.runtime.verifier.verify(token)


async def _splice(receive: Receive, send: Send, upstream: UpstreamLink) -> None:
    """Accept the client with the upstream's subprotocol and hand both sockets to the server's splice;
    this task then only waits for the client's side to end (the splice closes it with the upstream)."""
    await send({"type": SPLICE_MESSAGE, "upstream": upstream, "subprotocol": upstream.subprotocol})
    while (await receive())["type"] != "websocket.disconnect":
        pass
