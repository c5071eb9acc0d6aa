"""The routing table: which upstream serves a public path, and whether it needs a token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.settings import RouteSpec

# Never forwarded, whatever the table says: a service's private and operational endpoints.
_DENIED_SEGMENTS = frozenset({"internal"})
_DENIED_LAST_SEGMENTS = frozenset({"healthz", "readyz", "metrics"})


@dataclass(frozen=True, slots=True)
class Route:
    """A matched routing-table entry; ``template`` labels metrics instead of the raw path."""

    template: str
    upstream: str
    base_url: str
    public: bool
    stream: bool
    websocket: bool
    rate_limit: str | None
    prefix: str = field(repr=False)
    is_prefix: bool = field(repr=False)

    @classmethod
    def from_spec(cls, spec: RouteSpec, base_url: str) -> Route:
        is_prefix = spec.pattern.endswith("/*")
        return cls(
            template=spec.pattern,
            upstream=spec.upstream,
            base_url=base_url,
            public=spec.public,
            stream=spec.stream,
            websocket=spec.websocket,
            rate_limit=spec.rate_limit,
            prefix=spec.pattern[:-2] if is_prefix else spec.pattern,
            is_prefix=is_prefix,
        )

    def matches(self, path: str) -> bool:
        if path == self.prefix:
            return True
        return self.is_prefix and path.startswith(self.prefix) and path[len(self.prefix)] == "/"


def is_denied(path: str) -> bool:
    """Paths that could reach an internal or operational endpoint, however they are spelled."""
    lowered = path.lower()
    # The hot path pays for a split only when a path looks suspicious.
    if "/." in path or "internal" in lowered:
        segments = lowered.split("/")
        if any(s in (".", "..") or s in _DENIED_SEGMENTS for s in segments):
            return True
    return lowered.rpartition("/")[2] in _DENIED_LAST_SEGMENTS


class RoutingTable:
    """An exact entry beats a prefix; among prefixes the longest wins, so order does not matter."""

    def __init__(self, specs: Iterable[RouteSpec], upstream_urls: Mapping[str, str]) -> None:
        self.routes = tuple(Route.from_spec(spec, upstream_urls[spec.upstream]) for spec in specs)
        self._exact = {r.prefix: r for r in self.routes if not r.is_prefix}
        self._prefixes = tuple(
            sorted((r for r in self.routes if r.is_prefix), key=lambda r: len(r.prefix), reverse=True)
        )

    def match(self, path: str) -> Route | None:
        route = self._exact.get(path)
        if route is None:
            for candidate in self._prefixes:
                if candidate.matches(path):
                    route = candidate
                    break
            else:
                return None
        return None if is_denied(path) else route

    def route_for_template(self, path_template: str) -> Route | None:
        """The route that would serve an upstream's documented path (``/a/{id}`` included)."""
        return self.match(path_template)

    @property
    def upstreams(self) -> dict[str, str]:
        return {route.upstream: route.base_url for route in self.routes}
