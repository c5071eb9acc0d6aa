"""Who the client is behind trusted proxies: one rule for every component (contract section 3).

The client's address is the peer's, unless the peer is a trusted proxy (the ingress, the gateway):
then it is the right-most address in ``X-Forwarded-For`` that is not a trusted proxy. Each proxy
appends the address it saw, so everything to the left of the last trusted hop was written by the
client and proves nothing; the left-most entry in particular is whatever an attacker wants it to be.
Rate limits and login throttling both key on this address, so they must agree on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalised(host: str) -> str:
    """One spelling per address, so ``::ffff:1.2.3.4`` cannot dodge the count kept for ``1.2.3.4``."""
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return host.strip()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class TrustedProxies:
    """Peers (IPs or CIDRs) whose ``X-Forwarded-For`` is believed and extended rather than replaced."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()
        )
        self._verdicts: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, peer: str) -> bool:
        if not self._networks:
            return False
        verdict = self._verdicts.get(peer)
        if verdict is None:
            try:
                address = ipaddress.ip_address(peer.strip())
            except ValueError:
                return False
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            verdict = any(address in network for network in self._networks)
            if len(self._verdicts) > 4096:
                self._verdicts.clear()  # a bounded cache: hosts seen are few, garbage is not kept
            self._verdicts[peer] = verdict
        return verdict

    def client_address(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address given the peer and every ``X-Forwarded-For`` header value, in order."""
        if not peer:
            return "unknown"
        if peer not in self:
            return normalised(peer)
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        nearest = peer
        for hop in reversed(hops):
            if hop not in self:
                if not _is_address(hop):
                    # Not an address: a proxy we trust wrote nonsense; count it against that proxy
                    # rather than let the text pick its own bucket.
                    return normalised(nearest)
                return normalised(hop)
            nearest = hop
        # Every hop is one of ours (a call from inside): the farthest one is as near the client as we know.
        return normalised(nearest)

    def client_address_of(self, scope: Scope) -> str:
        """``client_address`` for an ASGI request (HTTP or WebSocket)."""
        client = scope.get("client")
        forwarded = [
            value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
        ]
        return self.client_address(str(client[0]) if client else None, forwarded)
