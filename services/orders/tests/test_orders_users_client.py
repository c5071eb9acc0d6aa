"""The users client on ``httpx.MockTransport``: what it retries, what it does not, the breaker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from orders.upstream.breaker import CircuitBreaker
from orders.upstream.users import UsersClient, UsersRetries
from shared.errors import Forbidden, UpstreamUnavailable
from shared.observability.request_id import request_id_var

USER = uuid.uuid4()
ACTIVE = {"id": str(USER), "is_active": True, "email": "a@b.c"}

# One step of a script: a status (200 answers an active user), a whole answer, or an error to raise.
Step = int | type[httpx.TransportError] | httpx.Response


@dataclass
class Users:
    """Answers from a script, one step per request (the last one repeats); records the requests."""

    script: list[Step]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, int):
            return httpx.Response(step, json=ACTIVE if step == 200 else {"detail": "x"})
        raise step("scripted failure", request=request)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(users: Users, sleeps: Sleeps | None = None, threshold: int = 5) -> UsersClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(users), base_url="http://users:8001")
    return UsersClient(
        http,
        service_token="svc-token",
        # A clock that stands still: the breaker's Retry-After is then exact.
        breaker=CircuitBreaker("users", failure_threshold=threshold, reset_timeout=30, clock=lambda: 1000.0),
        retry=UsersRetries(retries=2, backoff=0.05),
        sleep=sleeps or Sleeps(),
    )


def scripted(*script: Step) -> Users:
    return Users(list(script))


async def test_an_active_user_may_order_and_the_call_carries_token_and_request_id() -> None:
    users = scripted(200)
    token = request_id_var.set("req-abc")
    try:
        await client_for(users).ensure_may_order(USER)
    finally:
        request_id_var.reset(token)
    [request] = users.requests
    assert request.method == "GET"
    assert request.url == f"http://users:8001/internal/users/{USER}"
    assert request.headers["x-service-token"] == "svc-token"
    assert request.headers["x-request-id"] == "req-abc"
    assert request.extensions["timeout"]["read"] == 2.0


async def test_without_a_request_id_none_is_sent() -> None:
    users = scripted(200)
    await client_for(users).ensure_may_order(USER)
    assert "x-request-id" not in users.requests[0].headers


async def test_unknown_user_is_forbidden_without_retry() -> None:
    users = scripted(404)
    with pytest.raises(Forbidden, match="does not exist"):
        await client_for(users).ensure_may_order(USER)
    assert len(users.requests) == 1


async def test_inactive_user_is_forbidden() -> None:
    users = scripted(httpx.Response(200, json={"id": str(USER), "is_active": False}))
    with pytest.raises(Forbidden, match="deactivated"):
        await client_for(users).ensure_may_order(USER)


@pytest.mark.parametrize("failure", [503, 500, httpx.ConnectError, httpx.ConnectTimeout])
async def test_undelivered_requests_and_5xx_are_retried_with_backoff(failure: Step) -> None:
    users, sleeps = scripted(failure, failure, 200), Sleeps()
    await client_for(users, sleeps).ensure_may_order(USER)
    assert len(users.requests) == 3
    assert sleeps.calls == [0.05, 0.1]


@pytest.mark.parametrize("failure", [503, httpx.ConnectError])
async def test_retries_are_bounded_then_503_with_retry_after(failure: Step) -> None:
    users, sleeps = scripted(failure), Sleeps()
    with pytest.raises(UpstreamUnavailable) as raised:
        await client_for(users, sleeps).ensure_may_order(USER)
    assert len(users.requests) == 3
    assert sleeps.calls == [0.05, 0.1]
    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_a_request_that_may_have_arrived_is_not_retried(failure: Step) -> None:
    users, sleeps = scripted(failure), Sleeps()
    with pytest.raises(UpstreamUnavailable):
        await client_for(users, sleeps).ensure_may_order(USER)
    assert len(users.requests) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize("status", [401, 400, 418])
async def test_an_unexpected_answer_is_503_not_a_verdict(status: int) -> None:
    users = scripted(status)
    with pytest.raises(UpstreamUnavailable):
        await client_for(users).ensure_may_order(USER)
    assert len(users.requests) == 1


@pytest.mark.parametrize("body", [b"nope", b'{"id": "not-a-uuid", "is_active": true}', b"{}"])
async def test_a_malformed_body_is_503(body: bytes) -> None:
    users = scripted(httpx.Response(200, content=body))
    with pytest.raises(UpstreamUnavailable):
        await client_for(users).ensure_may_order(USER)


async def test_the_open_breaker_answers_at_once_without_calling_users() -> None:
    users = scripted(httpx.ConnectError)
    client = client_for(users, threshold=2)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await client.ensure_may_order(USER)
    calls = len(users.requests)
    with pytest.raises(UpstreamUnavailable) as raised:
        await client.ensure_may_order(USER)
    assert len(users.requests) == calls
    assert int(raised.value.headers["Retry-After"]) == 30
