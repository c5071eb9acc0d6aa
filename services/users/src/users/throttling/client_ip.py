"""The caller's address, believing X-Forwarded-For only from a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


class ClientIpResolver:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies
        )

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def __call__(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        if peer is None:
            return UNKNOWN
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and self._is_trusted(peer):
            first = forwarded.split(",")[0].strip()
            try:
                return _normalised(first)
            except ValueError:
                return peer
        return peer


def _normalised(host: str) -> str:
    """One spelling per address, so "::ffff:1.2.3.4" cannot dodge the count kept for "1.2.3.4"."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
