"""``UpstreamPool`` under an ``httpx.AsyncClient``: httpx's API, the pool's CPU cost per call.

Services call each other through ``httpx.AsyncClient``; where a call runs once per request (orders'
account check) the client gets this transport instead of httpx's default one, which costs several
times more CPU per call (``python -m bench.transport_bench`` measures all three side by side). Only
what the pool speaks goes through: plain ``http://`` to the pool's own host, whole bodies. The pool
already adds the current span's ``traceparent``, as httpx's instrumentation does for its transport.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from shared.http.errors import (
    UpstreamConnectFailed,
    UpstreamError,
    UpstreamTimedOut,
)
from shared.http.pool import Header, UpstreamPool

# The pool writes these itself (host from its URL, content-length from the body it is given).
_POOL_WRITES = frozenset((b"host", b"content-length", b"transfer-encoding"))
_HTTP_11 = {"http_version": b"HTTP/1.1"}


def pool_origin(url: str, setting: str) -> str:
    """``url`` without a trailing slash, if the pool can reach it: ``http://host[:port]`` and nothing
    more. For a settings validator, so a URL it cannot serve (https, a path) stops the start with
    ``setting`` named, rather than failing every call as unavailable."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise ValueError(f"{setting} must be http://host:port, not {url!r}")
    return url


class PoolTransport(httpx.AsyncBaseTransport):
    """Sends each request over ``pool`` and translates its errors into httpx's."""

    def __init__(self, pool: UpstreamPool, *, default_timeout: float = 5.0) -> None:
        self.pool = pool
        # A call made with timeout=None still needs a bound: the pool's timer is always armed.
        self.default_timeout = default_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http" or url.host != self.pool.host or (url.port or 80) != self.pool.port:
            raise httpx.UnsupportedProtocol(f"this transport only reaches {self.pool.host}:{self.pool.port}")
        headers: list[Header] = [(n, v) for n, v in request.headers.raw if n.lower() not in _POOL_WRITES]
        body = await request.aread() if request.method not in ("GET", "HEAD") else None
        timeouts = request.extensions.get("timeout", {})
        timeout = timeouts.get("read") or self.default_timeout
        try:
            answer = await self.pool.request(request.method, url.raw_path, headers, body, timeout=timeout)
        except UpstreamConnectFailed as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except UpstreamTimedOut as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except UpstreamError as exc:  # disconnected mid-answer, or not valid HTTP/1.1
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        # The body is whole already: given as ``content``, the response is read (and decoded) here,
        # as a ``MockTransport`` handler's is, so the client's ``aread`` has nothing left to do. As a
        # ``stream`` it would be read again through httpx's chain of async generators, each one
        # registered with and released by the event loop: ~15 of ~150 us a call, measured side by side
        # in one process. The pool has already taken the framing off (chunked or not), so
        # ``content-length`` is added where the answer had none, as httpx does for any body given whole.
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body, extensions=_HTTP_11)

    async def aclose(self) -> None:
        self.pool.close()
