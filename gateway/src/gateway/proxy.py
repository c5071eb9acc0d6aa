"""Forwarding one request to its upstream: token check, header rewrite, one pooled call, the answer back.

Per request this does one pass over the headers, a cached token check and one keep-alive upstream
call. Answers on ordinary routes (JSON APIs) are read whole and sent in one piece; stream routes (SSE)
are relayed as they arrive.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message, Receive, Scope, Send

from gateway.headers import (
    client_response_headers,
    leaks_internal_redirect,
    query_param,
    upstream_request_headers,
)
from gateway.routing import Route
from gateway.runtime import GatewayRuntime
from gateway.streaming import stream_response
from gateway.upstream import translate
from shared.auth.verifier import bearer_token
from shared.errors import AppError, NotFound, Unauthorized
from shared.http import UpstreamError
from shared.observability.request_id import current_request_id
from shared.observability.tracing import TracerCache, client_span
from shared.web.client_address import TrustedProxies
from shared.web.problems import problem_response


class BodyDisconnected(Exception):
    """The client went away while sending its body; there is nobody to answer."""


async def send_problem(scope: Scope, receive: Receive, send: Send, error: AppError) -> None:
    response = problem_response(
        error.status,
        headers=error.headers,
        title=error.title,
        detail=error.detail,
        type_slug=error.type_slug,
        instance=scope["path"],
    )
    await response(scope, receive, send)


class ProxyApp:
    """Forwards a request whose route the dispatcher matched (``scope["route_template"]``)."""

    def __init__(self, runtime: GatewayRuntime, stop: asyncio.Event | None = None) -> None:
        self.runtime = runtime
        self.stop = stop  # set when the server stops accepting (streams end then)
        self.timeout = runtime.settings.upstream_timeout
        self.trusted = TrustedProxies(runtime.settings.trusted_proxies)
        self.errors = runtime.metrics.errors
        self.observers = {name: runtime.metrics.observer(name) for name in runtime.table.upstreams}
        self.by_template = {route.template: route for route in runtime.table.routes}
        self.tracers = TracerCache("gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.by_template[scope["route_template"]]
        try:
            await self._forward(scope, receive, send, route)
        except AppError as error:
            await send_problem(scope, receive, send, error)
        except BodyDisconnected:
            return

    async def _forward(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        client = scope.get("client")
        forwarded = upstream_request_headers(
            scope["headers"],
            request_id=(current_request_id() or "").encode("latin-1"),
            client_ip=client[0] if client else None,
            scheme=scope["scheme"],
            trusted=self.trusted,
        )
        if not route.public:
            # An event stream may carry its token in ?token= (a browser's EventSource sets no headers).
            query_token = query_param(scope.get("query_string", b""), "token") if route.stream else None
            await self._authenticate(forwarded.authorization, query_token)
        body = None
        if forwarded.chunked or forwarded.content_length is not None:
            # Read whole before anything is sent upstream (the body-size middleware counts it as it
            # arrives, so a body over the limit never reaches a service); bodies here are small JSON.
            body = await self._read_body(receive)
        target: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        started = time.perf_counter()
        # The pool sends this span's traceparent upstream in place of the client's
        # (shared.observability.tracing).
        method, pool = scope["method"], self.runtime.pools[route.upstream]
        attributes = {"http.request.method": method, "peer.service": route.upstream}
        with client_span(self.tracers, f"{method} {route.upstream}", attributes) as span:
            try:
                response = await pool.request(
                    method, target, forwarded.headers, body, timeout=self.timeout, stream=route.stream
                )
            except UpstreamError as exc:
                self.errors.labels(route.upstream, exc.kind).inc()
                raise translate(exc, route.upstream) from exc
            if span is not None:
                span.set_attribute("http.response.status_code", response.status)
        self.observers[route.upstream].observe(time.perf_counter() - started)
        if 300 <= response.status < 400 and leaks_internal_redirect(response.headers, scope["path"]):
            response.release()
            raise NotFound("No such resource.")
        if route.stream:
            await stream_response(response, receive, send, self.stop)
            return
        headers = client_response_headers(response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _authenticate(self, authorization: bytes | None, query_token: str | None = None) -> None:
        token = bearer_token(authorization.decode("latin-1") if authorization else None) or query_token
        if token is None:
            raise Unauthorized("An access token is required.", error=None)
        # Verified tokens are cached by the verifier: a client's repeated token costs a dict lookup.
        await self.runtime.verifier.verify(token)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyDisconnected
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
