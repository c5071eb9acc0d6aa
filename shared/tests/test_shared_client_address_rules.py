"""Which address a request is counted against: the same rule in every component (no database)."""

from __future__ import annotations

import pytest

from shared.web.client_address import TrustedProxies


def client_address(scope: dict[str, object], trusted: TrustedProxies) -> str:
    return trusted.client_address_of(scope)


def scope(peer: str | None, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "headers": headers, "client": (peer, 1234) if peer else None}


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", (), "203.0.113.5"),
        ("203.0.113.5", ("198.51.100.1",), "203.0.113.5"),  # untrusted peer: the header is ignored
        ("127.0.0.1", ("198.51.100.1, 10.0.0.2",), "198.51.100.1"),
        # The left-most entry is whatever the client wrote: the proxy's own entry is the right-most one.
        ("127.0.0.1", ("6.6.6.6, 198.51.100.1",), "198.51.100.1"),
        ("127.0.0.1", ("6.6.6.6", "198.51.100.1"), "198.51.100.1"),
        ("10.0.0.3", ("6.6.6.6, 198.51.100.1, 10.0.0.2",), "198.51.100.1"),
        ("::1", ("2001:db8::1",), "2001:db8::1"),
        ("127.0.0.1", ("::ffff:198.51.100.1",), "198.51.100.1"),
        ("127.0.0.1", ("garbage",), "127.0.0.1"),
        ("127.0.0.1", ("10.0.0.7, garbage",), "127.0.0.1"),
        ("127.0.0.1", ("10.0.0.7",), "10.0.0.7"),  # every hop trusted: the farthest one
        ("10.1.2.3", ("198.51.100.9",), "198.51.100.9"),
        (None, ("198.51.100.1",), "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: tuple[str, ...], expected: str) -> None:
    trusted = TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"])
    assert client_address(scope(peer, *forwarded), trusted) == expected


def test_nothing_is_trusted_without_proxies() -> None:
    assert client_address(scope("127.0.0.1", "198.51.100.1"), TrustedProxies([])) == "127.0.0.1"
