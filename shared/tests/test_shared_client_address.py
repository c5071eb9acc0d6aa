"""The client's address behind trusted proxies: one rule for every component (contract section 3)."""

from __future__ import annotations

from shared.web.client_address import TrustedProxies


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


def test_an_untrusted_peer_is_the_client_whatever_it_writes() -> None:
    trusted = TrustedProxies(["10.0.0.0/8"])
    assert trusted.client_address_of(scope("203.0.113.9")) == "203.0.113.9"
    assert trusted.client_address_of(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    # Without trusted proxies nobody's X-Forwarded-For is believed.
    assert TrustedProxies([]).client_address_of(scope("10.1.2.3", "198.51.100.1")) == "10.1.2.3"


def test_behind_trusted_proxies_the_client_is_the_right_most_untrusted_hop() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
    chain = "198.51.100.1, 203.0.113.7, 10.9.9.9"
    assert trusted.client_address_of(scope("10.1.2.3", chain)) == "203.0.113.7"
    # The left-most entry is the client's own writing: believing it let anyone pick an address.
    assert trusted.client_address_of(scope("10.1.2.3", "1.2.3.4, 203.0.113.7")) == "203.0.113.7"
    # Several header lines are one list, in order.
    assert trusted.client_address_of(scope("10.1.2.3", "198.51.100.1", "203.0.113.8")) == "203.0.113.8"
    # Nothing forwarded, or only our own hops: the nearest we know.
    assert trusted.client_address_of(scope("10.1.2.3")) == "10.1.2.3"
    assert trusted.client_address_of(scope("10.1.2.3", "10.0.0.5")) == "10.0.0.5"


def test_one_spelling_per_address() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    assert trusted.client_address_of(scope("127.0.0.1", "::ffff:203.0.113.9")) == "203.0.113.9"
    assert trusted.client_address_of(scope("::ffff:127.0.0.1", "203.0.113.9")) == "203.0.113.9"
    assert trusted.client_address_of(scope("127.0.0.1", " 2001:DB8::1 ")) == "2001:db8::1"
    assert trusted.client_address(None) == "unknown"
