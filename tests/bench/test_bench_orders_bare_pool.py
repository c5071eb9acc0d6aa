"""The orders bench's baseline does the production client's work: ``BarePoolUsersClient``
(bench/orders_bare_pool.py) and ``UsersClient`` on ``PoolTransport``, each built as orders' lifespan
builds it, against the same real users stand-in: the same request, the same retries, the same verdicts.
Were the baseline to skip work, the bench's "httpx on PoolTransport / bare pool" ratio would flatter it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from bench.orders_bare_pool import BarePoolUsersClient
from orders.upstream.breaker import CircuitBreaker
from orders.upstream.users import UsersClient, UsersRetries
from shared.errors import Forbidden, UpstreamUnavailable
from shared.http import PoolTransport, ServiceClient, UpstreamPool
from shared.observability.request_id import request_id_var
from shared.testing.servers import closed_port_url
from shared.testing.users import SERVICE_TOKEN, UsersStandIn

CLIENTS = {"httpx on PoolTransport": UsersClient, "bare pool": BarePoolUsersClient}


@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Subject:
    client: UsersClient
    sleeps: Sleeps


@pytest.fixture(scope="module")
def users_server() -> Iterator[UsersStandIn]:
    with UsersStandIn().serving() as standin:
        yield standin


@pytest.fixture
def users(users_server: UsersStandIn) -> Iterator[UsersStandIn]:
    users_server.reset()
    yield users_server
    users_server.reset()


async def build(
    kind: str, url: str, *, threshold: int = 5, service_token: str = SERVICE_TOKEN
) -> AsyncIterator[Subject]:
    # As orders.resources.open_resources builds it (the bench swaps only the class).
    http = ServiceClient(base_url=url, transport=PoolTransport(UpstreamPool(url, connect_timeout=2.0)))
    sleeps = Sleeps()
    client = CLIENTS[kind](
        http,
        service_token=service_token,
        breaker=CircuitBreaker("users", failure_threshold=threshold, reset_timeout=30, clock=lambda: 1000.0),
        timeout=2.0,
        retry=UsersRetries(retries=2, backoff=0.05),
        sleep=sleeps,
    )
    try:
        yield Subject(client, sleeps)
    finally:
        if isinstance(client, BarePoolUsersClient):
            client.pool.close()
        await http.aclose()


@pytest.fixture(params=list(CLIENTS))
async def subject(request: pytest.FixtureRequest, users: UsersStandIn) -> AsyncIterator[Subject]:
    async for built in build(request.param, users.url):
        yield built


async def test_an_active_user_may_order_and_users_sees_the_token_and_request_id(
    subject: Subject, users: UsersStandIn
) -> None:
    user = users.add_user()
    token = request_id_var.set("req-bench")
    try:
        await subject.client.ensure_may_order(user)
    finally:
        request_id_var.reset(token)
    assert users.internal_calls == [{"user_id": str(user), "token": SERVICE_TOKEN, "request_id": "req-bench"}]


async def test_the_record_read_is_the_account(subject: Subject, users: UsersStandIn) -> None:
    user = users.add_user()
    record = await subject.client.get_user(user)
    assert record is not None
    assert (record.id, record.is_active) == (user, True)


async def test_unknown_and_deactivated_accounts_are_forbidden_without_retry(
    subject: Subject, users: UsersStandIn
) -> None:
    deactivated = users.add_user(active=False)
    with pytest.raises(Forbidden, match="does not exist"):
        await subject.client.ensure_may_order(uuid.uuid4())
    with pytest.raises(Forbidden, match="deactivated"):
        await subject.client.ensure_may_order(deactivated)
    assert len(users.internal_calls) == 2
    assert subject.sleeps.calls == []


async def test_5xx_answers_are_retried_with_backoff(subject: Subject, users: UsersStandIn) -> None:
    user = users.add_user()
    users.fail(user, times=2)
    await subject.client.ensure_may_order(user)
    assert users.lookups == [user] * 3
    assert subject.sleeps.calls == [0.05, 0.1]


async def test_retries_are_bounded_then_503(subject: Subject, users: UsersStandIn) -> None:
    user = users.add_user()
    users.fail(user)
    with pytest.raises(UpstreamUnavailable) as raised:
        await subject.client.ensure_may_order(user)
    assert users.lookups == [user] * 3
    assert subject.sleeps.calls == [0.05, 0.1]
    assert int(raised.value.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("kind", list(CLIENTS))
async def test_a_refused_connection_is_retried_then_503(kind: str) -> None:
    async for subject in build(kind, closed_port_url()):
        with pytest.raises(UpstreamUnavailable):
            await subject.client.ensure_may_order(uuid.uuid4())
        assert subject.sleeps.calls == [0.05, 0.1]


@pytest.mark.parametrize("kind", list(CLIENTS))
async def test_a_wrong_service_token_is_503_not_a_verdict(kind: str, users: UsersStandIn) -> None:
    user = users.add_user()
    async for subject in build(kind, users.url, service_token="another service's token"):
        with pytest.raises(UpstreamUnavailable):
            await subject.client.ensure_may_order(user)
        assert len(users.internal_calls) == 1
        assert subject.sleeps.calls == []


async def test_a_malformed_record_is_503(subject: Subject, users: UsersStandIn) -> None:
    user = users.add_user()
    users.accounts[user] = {"id": "not-a-uuid", "is_active": True}
    with pytest.raises(UpstreamUnavailable):
        await subject.client.ensure_may_order(user)


@pytest.mark.parametrize("kind", list(CLIENTS))
async def test_the_open_breaker_answers_without_calling_users(kind: str, users: UsersStandIn) -> None:
    user = users.add_user()
    users.failing_with = 503
    async for subject in build(kind, users.url, threshold=1):
        with pytest.raises(UpstreamUnavailable):
            await subject.client.ensure_may_order(user)
        calls = len(users.internal_calls)
        with pytest.raises(UpstreamUnavailable) as raised:
            await subject.client.ensure_may_order(user)
        assert len(users.internal_calls) == calls
        assert int(raised.value.headers["Retry-After"]) == 30
