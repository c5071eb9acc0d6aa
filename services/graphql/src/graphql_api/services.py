"""Calls to the services' public APIs with the caller's own credentials.

Every call carries the caller's ``Authorization`` and ``X-Request-ID`` (and the trace context), so each
service applies its own rules as it would to the caller directly: GraphQL grants nothing a REST client
does not have. A service's answer is JSON or a problem document (``errors.from_problem``); a service that
cannot be reached fails only the fields that needed it (``UNAVAILABLE``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from graphql_api.errors import from_problem, internal, unavailable
from graphql_api.settings import Settings
from shared.http import PoolTransport, ServiceClient, UpstreamPool

log = logging.getLogger(__name__)

# Headers of the client's request that every service call carries on.
_FORWARDED = ("authorization", "x-request-id", "traceparent", "tracestate")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked, as the services must see it."""

    headers: Mapping[str, str]
    # From the request's ``Idempotency-Key``: forwarded on mutations only.
    idempotency_key: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], request_id: str | None) -> Caller:
        forwarded = {name: headers[name] for name in _FORWARDED if name in headers}
        if request_id:
            # The id the request-id middleware accepted or minted, not a client's invalid one.
            forwarded["x-request-id"] = request_id
        return cls(forwarded, headers.get("idempotency-key"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Services:
    """One keep-alive httpx client per service, opened by the app's lifespan."""

    settings: Settings
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncIterator[Services]:
        """``transport`` stands in for the network in tests (``httpx.MockTransport``)."""
        timeout = httpx.Timeout(settings.upstream_timeout, connect=settings.connect_timeout)
        services = cls(settings)
        for name, url in settings.service_urls.items():
            # Every field is at least one call: the shared library's fast transport, as orders' account
            # check has it (shared.http.transport; httpx's own costs several times the CPU per call).
            fast = transport or PoolTransport(
                UpstreamPool(
                    url, max_idle=settings.upstream_pool_size, connect_timeout=settings.connect_timeout
                )
            )
            services.clients[name] = ServiceClient(base_url=url, timeout=timeout, transport=fast)
        try:
            yield services
        finally:
            for client in services.clients.values():
                await client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        caller: Caller,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        arguments: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer, or ``ApiError``; ``arguments`` renames REST input names to GraphQL's."""
        headers = dict(caller.headers)
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            headers["content-type"] = "application/json"
        try:
            response = await self.clients[service].request(
                method, path, params=_query(params), content=content, headers=headers
            )
        except httpx.TransportError as exc:
            log.warning("service call failed", extra={"upstream": service, "error": str(exc) or repr(exc)})
            raise unavailable(service) from exc
        return _answer(service, response, arguments or {})

    async def internal(
        self, service: str, path: str, params: Mapping[str, str], request_id: str | None
    ) -> Any:
        """A call with the service credential (``/internal/*``), never with the caller's token."""
        headers = {"x-service-token": self.settings.users_service_token.get_secret_value()}
        if request_id:
            headers["x-request-id"] = request_id
        try:
            response = await self.clients[service].get(path, params=params, headers=headers)
        except httpx.TransportError as exc:
            log.warning("service call failed", extra={"upstream": service, "error": str(exc) or repr(exc)})
            raise unavailable(service) from exc
        if response.status_code != 200:
            # The credential or the request is ours, not the client's: whatever failed is internal.
            log.error("internal call refused", extra={"upstream": service, "status": response.status_code})
            raise internal()
        return _decode(service, response)


def _query(params: Mapping[str, str | int | bool] | None) -> dict[str, str] | None:
    if params is None:
        return None
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _decode(service: str, response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        log.error("service answered no JSON", extra={"upstream": service, "status": response.status_code})
        raise internal() from exc


def _answer(service: str, response: httpx.Response, arguments: Mapping[str, str]) -> Any:
    if response.status_code < 300:
        return _decode(service, response) if response.content else None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    raise from_problem(
        service,
        response.status_code,
        body,
        retry_after=response.headers.get("retry-after"),
        arguments=arguments,
    )
