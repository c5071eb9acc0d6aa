"""Which address a login is counted against (no database)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from users.throttling.client_ip import ClientIpResolver


def request(peer: str | None, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "headers": headers, "client": (peer, 1234) if peer else None}
    return Request(scope)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: the header is ignored
        ("127.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("127.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("10.1.2.3", "198.51.100.9", "198.51.100.9"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded: str | None, expected: str) -> None:
    resolve = ClientIpResolver(["127.0.0.1", "::1", "10.0.0.0/8"])
    assert resolve(request(peer, forwarded)) == expected
