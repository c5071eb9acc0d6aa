"""A small HTTP/1.1 keep-alive client for service-to-service hot paths (see ``pool``)."""

from shared.http.errors import (
    UpstreamConnectFailed,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimedOut,
)
from shared.http.pool import Header, UpstreamPool, UpstreamResponse

__all__ = [
    "Header",
    "UpstreamConnectFailed",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimedOut",
]
