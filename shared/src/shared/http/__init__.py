"""A small HTTP/1.1 keep-alive client for service-to-service hot paths (see ``pool``),
also as the transport of an ``httpx.AsyncClient`` (``transport``), and the client services call each
other with (``client``)."""

from shared.http.client import ServiceClient
from shared.http.errors import (
    UpstreamConnectFailed,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimedOut,
)
from shared.http.pool import Header, UpstreamPool, UpstreamResponse
from shared.http.transport import PoolTransport, pool_origin

__all__ = [
    "Header",
    "PoolTransport",
    "ServiceClient",
    "UpstreamConnectFailed",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimedOut",
    "pool_origin",
]
