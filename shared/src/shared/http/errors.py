"""How a call to an upstream can fail; ``kind`` tells the callers' metrics and answers apart."""

from __future__ import annotations


class UpstreamError(Exception):
    """A call to an upstream failed."""

    kind = "bad_gateway"


class UpstreamConnectFailed(UpstreamError):
    """Refused, unreachable or too slow to accept: nothing was sent, so retrying is safe."""

    kind = "unavailable"


class UpstreamTimedOut(UpstreamError):
    """The answer did not arrive in time; the request may have been processed."""

    kind = "timeout"


class UpstreamDisconnected(UpstreamError):
    """The upstream closed the connection before its answer was complete."""


class UpstreamProtocolError(UpstreamError):
    """The upstream's answer was not valid HTTP/1.1."""
