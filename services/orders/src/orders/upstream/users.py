"""The synchronous question orders asks users before storing an order: does this account exist and
may it order? Bounded retries where safe, a timeout per attempt, and a circuit breaker around it all.

The call goes through ``shared.http.UpstreamPool`` rather than httpx: it runs once per order, and
httpx cost ~2.1 ms of orders' CPU per call here against ~0.18 ms for the pool (pool.py has figures).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import BaseModel, ValidationError

from orders.upstream.breaker import CircuitBreaker, CircuitOpen
from shared.errors import Forbidden, UpstreamUnavailable
from shared.http import Header, UpstreamConnectFailed, UpstreamError
from shared.observability.request_id import current_request_id

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class UserRecord(BaseModel):
    """The part of users' internal answer this service reads."""

    id: uuid.UUID
    is_active: bool


class UsersFailed(Exception):
    """users did not give a usable answer (5xx, unexpected status or body)."""


class Answer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...


class Requester(Protocol):
    """What the client needs of ``shared.http.UpstreamPool`` (unit tests give it a fake)."""

    async def request(
        self, method: str, target: bytes, headers: list[Header], body: bytes | None, *, timeout: float
    ) -> Answer: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2
    backoff: float = 0.05


class UsersClient:
    def __init__(
        self,
        pool: Requester,
        *,
        service_token: str,
        breaker: CircuitBreaker,
        timeout: float = 2.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.pool = pool
        self.breaker = breaker
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._token_header: Header = (b"x-service-token", service_token.encode("latin-1"))

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
        try:
            answer = await self._get(f"/internal/users/{user_id}".encode("ascii"))
            user = self._parse(answer)
        except (UpstreamError, UsersFailed) as exc:
            self.breaker.record_failure()
            log.warning("users check failed", extra={"error": str(exc) or type(exc).__name__})
            raise UpstreamUnavailable(
                "The users service could not confirm the account; try again later.",
                retry_after=self.breaker.retry_after(),
            ) from exc
        self.breaker.record_success()
        return user

    async def _get(self, target: bytes) -> Answer:
        """GET, retried only when that is safe and useful: the request never arrived (connect error)
        or users answered 5xx. A timeout is not retried: it would multiply the wait. (The pool itself
        retries a GET once when a reused keep-alive connection turns out closed before any answer.)"""
        headers = [self._token_header]
        request_id = current_request_id()
        if request_id:
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
    def _parse(answer: Answer) -> UserRecord | None:
        if answer.status == 404:
            return None
        if answer.status != 200:
            # 401 here means our service token is wrong: an operator must fix it, and the client
            # still gets 503 rather than a verdict on its account.
            raise UsersFailed(f"users answered {answer.status}")
        try:
            return UserRecord.model_validate_json(answer.body)
        except ValidationError as exc:
            raise UsersFailed("users answered with an unexpected body") from exc


async def check_users(http: httpx.AsyncClient, jwks_url: str) -> None:
    """Readiness: users answers with its JWKS, which every token check here depends on."""
    response = await http.get(jwks_url, timeout=1.5)
    response.raise_for_status()
