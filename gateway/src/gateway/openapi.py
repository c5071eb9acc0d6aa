"""The aggregated API description: every reachable upstream's public paths, cached for a short while."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from gateway.openapi_merge import merge
from gateway.routing import RoutingTable

log = logging.getLogger(__name__)

# How long an incomplete document (some upstream was down) is served before trying again.
_INCOMPLETE_TTL = 5.0
_FETCH_TIMEOUT = 3.0


class OpenApiAggregator:
    def __init__(
        self,
        table: RoutingTable,
        http: httpx.AsyncClient,
        *,
        ttl: float = 30.0,
        title: str = "API",
        version: str = "1.0.0",
    ) -> None:
        self.table = table
        self.http = http
        self.ttl = ttl
        self.title = title
        self.version = version
        self._document: dict[str, Any] | None = None
        self._expires = float("-inf")
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        if self._document is not None and time.monotonic() < self._expires:
            return self._document
        async with self._lock:
            if self._document is None or time.monotonic() >= self._expires:
                await self._refresh()
            assert self._document is not None
            return self._document

    async def _refresh(self) -> None:
        upstreams = [(name, url) for name, url in self.table.upstreams.items() if self._documented(name)]
        fetched = await asyncio.gather(*(self._fetch(name, url) for name, url in upstreams))
        documents = [(name, doc) for (name, _), doc in zip(upstreams, fetched, strict=True) if doc]
        missing = [name for (name, _), doc in zip(upstreams, fetched, strict=True) if doc is None]
        description = "Every public endpoint, served through the gateway."
        if missing:
            description += " Not listed now (unreachable): " + ", ".join(missing) + "."
        self._document = merge(
            documents, self.table, title=self.title, version=self.version, description=description
        )
        self._expires = time.monotonic() + (min(self.ttl, _INCOMPLETE_TTL) if missing else self.ttl)

    def _documented(self, upstream: str) -> bool:
        return any(r.upstream == upstream and not r.websocket for r in self.table.routes)

    async def _fetch(self, name: str, base_url: str) -> dict[str, Any] | None:
        try:
            response = await self.http.get(base_url + "/openapi.json", timeout=_FETCH_TIMEOUT)
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # A service that is down is left out of the docs; the rest stay useful.
            log.warning("skipping an upstream's OpenAPI", extra={"upstream": name, "error": str(exc)})
            return None
        if not isinstance(doc, dict):
            log.warning("an upstream's OpenAPI is not an object", extra={"upstream": name})
            return None
        return doc
