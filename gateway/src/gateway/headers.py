"""Header rewriting at the proxy boundary: hop-by-hop headers stay on their own hop (RFC 9110 7.6.1)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from shared.web.client_address import TrustedProxies

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
# Replaced by the gateway's own values. Expect is dropped because the gateway reads the whole body
# before calling upstream, so the client's expectation has already been met.
_REQUEST_REPLACED = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
# Like nginx's proxy_hide_header defaults: the gateway's server writes its own Date, and the upstream's
# Server header would only tell an attacker what runs behind the gateway.
_RESPONSE_REPLACED = frozenset({b"date", b"server"})


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(token.strip().lower() for token in value.split(b",") if token.strip())


def _is_hop(name: bytes) -> bool:
    return name in HOP_BY_HOP or name.startswith(b"proxy-")


@dataclass(slots=True)
class ForwardedRequest:
    """What the proxy needs from the client's headers, gathered in one pass."""

    headers: list[Header]
    authorization: bytes | None
    content_length: int | None
    chunked: bool


def upstream_request_headers(
    raw: list[Header], *, request_id: bytes, client_ip: str | None, scheme: str, trusted: TrustedProxies
) -> ForwardedRequest:
    """Client headers (ASGI: lower-case names) to send upstream, with X-Forwarded-* and the request id.

    X-Forwarded-For is the peer's address alone unless the peer is a trusted proxy, whose list is then
    extended: services trust the gateway and take the right-most address that is not a trusted proxy
    (``shared.web.client_address``), so whatever a client writes into the header itself is never believed.
    """
    out: list[Header] = []
    host = forwarded_for = authorization = connection = None
    content_length: int | None = None
    chunked = False
    for name, value in raw:
        if name in _REQUEST_REPLACED:
            if name == b"host":
                host = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else None
            continue
        if _is_hop(name):
            if name == b"connection":
                connection = value
            elif name == b"transfer-encoding":
                chunked = True
            continue
        if name == b"authorization":
            authorization = value
        out.append((name, value))
    if connection is not None:
        listed = _connection_tokens(connection)
        out = [(name, value) for name, value in out if name not in listed]
    out.append((b"x-request-id", request_id))
    if client_ip is not None:
        peer = client_ip.encode("latin-1")
        if forwarded_for and client_ip in trusted:
            peer = forwarded_for + b", " + peer
        out.append((b"x-forwarded-for", peer))
    out.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    if host is not None:
        out.append((b"x-forwarded-host", host))
    return ForwardedRequest(out, authorization, content_length, chunked)


def client_response_headers(raw: list[Header]) -> list[Header]:
    """Upstream response headers (names already lower-case) for the client, without hop-by-hop ones."""
    out: list[Header] = []
    connection: bytes | None = None
    for name, value in raw:
        if _is_hop(name):
            if name == b"connection":
                connection = value
            continue
        if name not in _RESPONSE_REPLACED:
            out.append((name, value))
    if connection is not None:
        listed = _connection_tokens(connection)
        out = [(name, value) for name, value in out if name not in listed]
    return out


def leaks_internal_redirect(headers: list[Header], request_path: str) -> bool:
    """Whether an upstream's redirect must not reach the client (contract section 3).

    An upstream knows only its own address, so an absolute ``Location`` points at an internal one;
    and a trailing-slash redirect (FastAPI's ``redirect_slashes``) is an upstream's routing detail.
    """
    location = next((value for name, value in headers if name == b"location"), None)
    if location is None:
        return False
    target = urlsplit(location.decode("latin-1").strip())
    if target.scheme or target.netloc or target.path.startswith("//"):
        return True
    return target.path.rstrip("/") == request_path.rstrip("/")


def query_param(query_string: bytes, name: str) -> str | None:
    """The first value of ``name`` in a query string (percent-decoded), or None."""
    if not query_string:
        return None
    for key, value in parse_qsl(query_string.decode("latin-1")):
        if key == name:
            return value or None
    return None
