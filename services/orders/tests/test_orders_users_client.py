"""The users client on a fake of the keep-alive pool: what it retries, what it does not, the breaker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import orjson
import pytest

from orders.upstream.breaker import CircuitBreaker
from orders.upstream.users import RetryPolicy, UsersClient
from shared.errors import Forbidden, UpstreamUnavailable
from shared.http import Header, UpstreamConnectFailed, UpstreamTimedOut
from shared.observability.request_id import request_id_var

USER = uuid.uuid4()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True)
class Sent:
    method: str
    target: bytes
    headers: dict[bytes, bytes]
    timeout: float


@dataclass
class Upstream:
    """Answers from a script, one entry per request (the last one repeats); records the requests."""

    script: list[int | type[Exception] | Answer]
    requests: list[Sent] = field(default_factory=list)

    async def request(
        self, method: str, target: bytes, headers: list[Header], body: bytes | None, *, timeout: float
    ) -> Answer:
        self.requests.append(Sent(method, target, dict(headers), timeout))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Answer):
            return step
        if isinstance(step, int):
            if step == 200:
                return answer({"id": str(USER), "is_active": True, "email": "a@b.c"})
            return answer({"detail": "x"}, step)
        raise step("scripted failure")


def answer(document: object, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(document))


def scripted(*script: int | type[Exception] | Answer) -> Upstream:
    return Upstream(list(script))


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(upstream: Upstream, sleeps: Sleeps, threshold: int = 5) -> UsersClient:
    return UsersClient(
        upstream,
        service_token="svc-token",
        breaker=CircuitBreaker("users", failure_threshold=threshold, reset_timeout=30),
        retry=RetryPolicy(retries=2, backoff=0.05),
        sleep=sleeps,
    )


async def test_an_active_user_may_order_and_the_call_carries_token_and_request_id() -> None:
    upstream, sleeps = scripted(200), Sleeps()
    token = request_id_var.set("req-abc")
    try:
        await client_for(upstream, sleeps).ensure_may_order(USER)
    finally:
        request_id_var.reset(token)
    [request] = upstream.requests
    assert request.method == "GET"
    assert request.target == f"/internal/users/{USER}".encode()
    assert request.headers[b"x-service-token"] == b"svc-token"
    assert request.headers[b"x-request-id"] == b"req-abc"
    assert request.timeout == 2.0


async def test_unknown_user_is_forbidden_without_retry() -> None:
    upstream, sleeps = scripted(404), Sleeps()
    with pytest.raises(Forbidden):
        await client_for(upstream, sleeps).ensure_may_order(USER)
    assert len(upstream.requests) == 1


async def test_inactive_user_is_forbidden() -> None:
    inactive = scripted(answer({"id": str(USER), "is_active": False}))
    users = UsersClient(inactive, service_token="t", breaker=CircuitBreaker("users"))
    with pytest.raises(Forbidden, match="deactivated"):
        await users.ensure_may_order(USER)


@pytest.mark.parametrize("failure", [503, 500, UpstreamConnectFailed])
async def test_connect_errors_and_5xx_are_retried_with_backoff(failure: int | type[Exception]) -> None:
    upstream, sleeps = scripted(failure, failure, 200), Sleeps()
    await client_for(upstream, sleeps).ensure_may_order(USER)
    assert len(upstream.requests) == 3
    assert sleeps.calls == [0.05, 0.1]


async def test_retries_are_bounded_then_503_with_retry_after() -> None:
    upstream, sleeps = scripted(503), Sleeps()
    with pytest.raises(UpstreamUnavailable) as raised:
        await client_for(upstream, sleeps).ensure_may_order(USER)
    assert len(upstream.requests) == 3
    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) >= 1


async def test_a_timeout_is_not_retried() -> None:
    upstream, sleeps = scripted(UpstreamTimedOut), Sleeps()
    with pytest.raises(UpstreamUnavailable):
        await client_for(upstream, sleeps).ensure_may_order(USER)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("status", [401, 400, 418])
async def test_an_unexpected_answer_is_503_not_a_verdict(status: int) -> None:
    upstream, sleeps = scripted(status), Sleeps()
    with pytest.raises(UpstreamUnavailable):
        await client_for(upstream, sleeps).ensure_may_order(USER)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("body", [b"nope", b'{"id": "not-a-uuid", "is_active": true}', b"{}"])
async def test_a_malformed_body_is_503(body: bytes) -> None:
    users = UsersClient(scripted(Answer(200, body)), service_token="t", breaker=CircuitBreaker("users"))
    with pytest.raises(UpstreamUnavailable):
        await users.ensure_may_order(USER)


async def test_the_open_breaker_answers_at_once_without_calling_users() -> None:
    upstream, sleeps = scripted(UpstreamConnectFailed), Sleeps()
    users = client_for(upstream, sleeps, threshold=2)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await users.ensure_may_order(USER)
    calls = len(upstream.requests)
    with pytest.raises(UpstreamUnavailable) as raised:
        await users.ensure_may_order(USER)
    assert len(upstream.requests) == calls
    assert 25 <= int(raised.value.headers["Retry-After"]) <= 30
