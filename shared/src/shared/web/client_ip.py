"""Which address a request comes from, one rule in every component (contract section 3).

Behind trusted proxies the client is the right-most ``X-Forwarded-For`` entry that is not itself a
trusted proxy: each proxy appends the peer it saw, so everything left of that entry was written by the
client and proves nothing. The first entry, which some frameworks believe, is the client's to choose.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


class TrustedProxies:
    """Peers whose ``X-Forwarded-For`` is believed (a load balancer, the gateway)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries
        )
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, host: str) -> bool:
        if not self._networks:
            return False
        verdict = self._verdicts.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            verdict = any(address in network for network in self._networks)
            if len(self._verdicts) > 4096:  # a flood of addresses must not grow this without bound
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict


def normalised(host: str) -> str:
    """One spelling per address, so "::ffff:1.2.3.4" cannot dodge the count kept for "1.2.3.4"."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def client_address(scope: Scope, trusted: TrustedProxies) -> str:
    """The client's address: the peer, or behind trusted proxies the nearest hop they vouch for."""
    client = scope.get("client")
    if not client:
        return UNKNOWN
    peer = str(client[0])
    if peer not in trusted:
        return _or_raw(peer)
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend(hop.strip() for hop in value.decode("latin-1").split(","))
    nearest = peer
    for hop in reversed(hops):
        if not hop:
            continue
        if hop not in trusted:
            try:
                return normalised(hop)
            except ValueError:
                # Not an address: a proxy we trust wrote nonsense; count the request against that proxy.
                return _or_raw(nearest)
        nearest = hop
    return _or_raw(nearest)


def _or_raw(host: str) -> str:
    try:
        return normalised(host)
    except ValueError:
        return host
