"""The orders service with its account check on the bare ``shared.http.UpstreamPool``: a bench baseline.

``python -m bench.orders_bare_pool serve`` is the normal orders command line (``orders.cli``) with one
substitution: the lifespan builds ``BarePoolUsersClient`` instead of ``UsersClient``. It asks users the
way orders did before httpx became the API of service calls (``git show 2a6271b^:services/orders/src/
orders/upstream/users.py``): the pool's own ``request``, a retry loop written out, no httpx and no
tenacity on the path. What it asks, what it retries and the verdicts it reaches are the production
client's (``tests/bench/test_bench_orders_bare_pool.py`` holds the two side by side), so
``bench.orders_bench`` running orders as ``orders`` and as this module measures what httpx on
``PoolTransport`` costs per order. Nothing outside bench/ imports it: no production path exists for it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Sequence
from unittest import mock

import httpx
from pydantic import ValidationError

import orders.resources
from orders.cli import main as orders_main
from orders.upstream.breaker import CircuitBreaker, CircuitOpen
from orders.upstream.users import Sleep, UserRecord, UsersClient, UsersFailed, UsersRetries
from shared.errors import UpstreamUnavailable
from shared.http import Header, UpstreamConnectFailed, UpstreamError, UpstreamPool, UpstreamResponse
from shared.observability.request_id import current_request_id

log = logging.getLogger("bench.orders_bare_pool")


class BarePoolUsersClient(UsersClient):
    """``UsersClient`` whose call to users goes over a bare ``UpstreamPool`` (constructed the same way)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        service_token: str,
        breaker: CircuitBreaker,
        timeout: float = 2.0,
        retry: UsersRetries | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(
            http, service_token=service_token, breaker=breaker, timeout=timeout, retry=retry, sleep=sleep
        )
        # A pool of its own to the same users, built as the lifespan builds the transport's; ``http``'s
        # PoolTransport is never called, so it never opens a connection. Closed with the process.
        self.pool = UpstreamPool(str(http.base_url), connect_timeout=timeout)
        self.retry = retry or UsersRetries()
        self.sleep = sleep
        self._token_header: Header = (b"x-service-token", service_token.encode("latin-1"))

    async def get_user(self, user_id: uuid.UUID) -> UserRecord | None:
        """``UsersClient.get_user`` with the pool's errors in place of httpx's."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise UpstreamUnavailable(
                "The users service is not answering; try again later.", retry_after=exc.retry_after
            ) from exc
        try:
            answer = await self._get(f"/internal/users/{user_id}".encode("ascii"))
            user = self._parse_answer(answer)
        except (UpstreamError, UsersFailed) as exc:
            self.breaker.record_failure()
            log.warning("users check failed", extra={"error": str(exc) or type(exc).__name__})
            raise UpstreamUnavailable(
                "The users service could not confirm the account; try again later.",
                retry_after=self.breaker.retry_after(),
            ) from exc
        self.breaker.record_success()
        return user

    async def _get(self, target: bytes) -> UpstreamResponse:
        """Retried as the production client retries: a refused or unconnected request, or a 5xx answer,
        up to ``retry.retries`` times after ``backoff``, then twice that...; never a timeout."""
        headers = [self._token_header]
        if request_id := current_request_id():
            headers.append((b"x-request-id", request_id.encode("latin-1")))
        attempt = 0
        while True:
            try:
                answer = await self.pool.request("GET", target, headers, None, timeout=self.timeout)
            except UpstreamConnectFailed:
                if attempt >= self.retry.retries:
                    raise
            else:
                if answer.status < 500 or attempt >= self.retry.retries:
                    return answer
            await self.sleep(self.retry.backoff * 2**attempt)
            attempt += 1

    @staticmethod
    def _parse_answer(answer: UpstreamResponse) -> UserRecord | None:
        if answer.status == httpx.codes.NOT_FOUND:
            return None
        if answer.status != httpx.codes.OK:
            raise UsersFailed(f"users answered {answer.status}")
        try:
            return UserRecord.model_validate_json(answer.body)
        except ValidationError as exc:
            raise UsersFailed("users answered with an unexpected body") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """The orders command line, with the lifespan building ``BarePoolUsersClient``."""
    # orders.resources looks UsersClient up when the lifespan runs, so replacing its name there is
    # the whole substitution; the rest of the process is the service as deployed.
    with mock.patch.object(orders.resources, "UsersClient", BarePoolUsersClient):
        return orders_main(argv)


if __name__ == "__main__":
    sys.exit(main())
