"""The synchronous question orders asks users before storing an order: does this account exist and
may it order? Bounded retries where safe, a timeout per attempt, and a circuit breaker around it all.

An ordinary ``httpx.AsyncClient`` call; the lifespan makes the client a ``shared.http.ServiceClient``
(no cookie store, so no cookie work per answer) on ``shared.http.PoolTransport``, since the call runs
once per order and httpx's own transport costs several times its CPU
(``python -m bench.transport_bench``). It runs once per order, so its CPU is counted
(``python -m bench.orders_bench`` compares it with the bare pool): the request is built whole and
given to ``send`` (``get`` would parse and merge the URL with the base three times, ~70 us), and the
first attempt runs outside tenacity, whose per-call set-up (~40 us) is paid only when a retry is due.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from orders.upstream.breaker import CircuitBreaker, CircuitOpen
from shared.errors import Forbidden, UpstreamUnavailable
from shared.observability.request_id import current_request_id

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

# Retried: the request never arrived (refused, or no connection in time), or users answered 5xx.
# A read timeout is not: the request may have arrived, and retrying would multiply the wait.
_NOT_DELIVERED = (httpx.ConnectError, httpx.ConnectTimeout)


class UserRecord(BaseModel):
    """The part of users' internal answer this service reads."""

    id: uuid.UUID
    is_active: bool


class UsersFailed(Exception):
    """users did not give a usable answer (5xx, unexpected status or body)."""


@dataclass(frozen=True, slots=True)
class UsersRetries:
    """How often a failed account check is tried again: after ``backoff`` seconds, then twice that..."""

    retries: int = 2
    backoff: float = 0.05


class UsersClient:
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
        """``http`` has users' base URL; ``sleep`` waits between retries (tests pass a recorder)."""
        self.http = http
        self._users = str(http.base_url).rstrip("/")
        self._timeout = httpx.Timeout(timeout).as_dict()
        self.breaker = breaker
        self.timeout = timeout
        self.service_token = service_token
        self.retry = retry or UsersRetries()
        self._sleep = sleep
        # The retries after the first attempt (``_ask``): waits of 2x, 4x... ``backoff`` between them,
        # the first wait (1x) being ``_ask``'s own.
        self._retrying = AsyncRetrying(
            sleep=sleep,
            stop=stop_after_attempt(max(1, self.retry.retries)),
            wait=wait_exponential(multiplier=2 * self.retry.backoff, min=0),
            retry=retry_if_exception_type(_NOT_DELIVERED) | retry_if_result(lambda r: r.status_code >= 500),
            retry_error_callback=_last_outcome,
        )

    async def ensure_may_order(self, user_id: uuid.UUID) -> None:
        """403 unless the account exists and is active; 503 when users cannot tell."""
        user = await self.get_user(user_id)
        if user is None:
            raise Forbidden("The account of this access token does not exist.")
        if not user.is_active:
            raise Forbidden("The account is deactivated and cannot place orders.")

    async def get_user(self, user_id: uuid.UUID) -> UserRecord | None:
        """The account, None when users does not know it; ``UpstreamUnavailable`` when users is down."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise UpstreamUnavailable(
                "The users service is not answering; try again later.", retry_after=exc.retry_after
            ) from exc
        headers = {"x-service-token": self.service_token}
        if request_id := current_request_id():
            headers["x-request-id"] = request_id
        request = httpx.Request(
            "GET",
            f"{self._users}/internal/users/{user_id}",
            headers=headers,
            extensions={"timeout": self._timeout},
        )
        try:
            user = self._parse(await self._ask(request))
        except (httpx.HTTPError, UsersFailed) as exc:
            self.breaker.record_failure()
            log.warning("users check failed", extra={"error": str(exc) or type(exc).__name__})
            raise UpstreamUnavailable(
                "The users service could not confirm the account; try again later.",
                retry_after=self.breaker.retry_after(),
            ) from exc
        self.breaker.record_success()
        return user

    async def _ask(self, request: httpx.Request) -> httpx.Response:
        """One attempt; tenacity takes over only when it failed in a way that is retried."""
        try:
            response = await self.http.send(request)
        except _NOT_DELIVERED:
            if not self.retry.retries:
                raise
        else:
            if response.status_code < 500 or not self.retry.retries:
                return response
        await self._sleep(self.retry.backoff)
        # A fresh copy per call: tenacity keeps a call's state on the instance (per thread, not per
        # task), so concurrent checks must not share one.
        answer: httpx.Response = await self._retrying.copy()(self.http.send, request)
        return answer

    @staticmethod
    def _parse(response: httpx.Response) -> UserRecord | None:
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            # 401 here means our service token is wrong: an operator must fix it, and the client
            # still gets 503 rather than a verdict on its account.
            raise UsersFailed(f"users answered {response.status_code}")
        try:
            return UserRecord.model_validate_json(response.content)
        except ValidationError as exc:
            raise UsersFailed("users answered with an unexpected body") from exc


def _last_outcome(state: RetryCallState) -> httpx.Response:
    """Out of retries: the last answer (a 5xx) as it is, or the last error raised again."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response
