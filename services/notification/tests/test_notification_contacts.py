"""The users directory on ``httpx.MockTransport``, and learning a contact with no transaction open."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from notification.contacts import service as contacts
from notification.contacts.directory import DirectoryEntry, UsersDirectory
from notification.settings import SCHEMA
from shared.db.engine import make_engine, make_sessionmaker
from shared.errors import UpstreamUnavailable
from shared.observability.request_id import request_id_var

from .conftest import Database, NotificationDb

USER = uuid.uuid4()
ACCOUNT = {"id": str(USER), "email": "ada@example.com", "full_name": "Ada", "is_active": True}

Scripted = httpx.Response | type[httpx.TransportError]


def directory(answer: Scripted, seen: list[httpx.Request] | None = None) -> UsersDirectory:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("scripted failure", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return UsersDirectory(http, "http://users:8001", "svc-token", timeout=1.5)


async def test_a_lookup_carries_the_service_token_and_the_request_id() -> None:
    seen: list[httpx.Request] = []
    token = request_id_var.set("corr-1")
    try:
        entry = await directory(httpx.Response(200, json=ACCOUNT), seen).lookup(USER)
    finally:
        request_id_var.reset(token)
    assert entry == DirectoryEntry(USER, "ada@example.com", "Ada", True)
    [request] = seen
    assert request.url == f"http://users:8001/internal/users/{USER}"
    assert request.headers["x-service-token"] == "svc-token"
    assert request.headers["x-request-id"] == "corr-1"
    assert request.extensions["timeout"]["read"] == 1.5


async def test_an_unknown_user_is_none() -> None:
    assert await directory(httpx.Response(404, json={"detail": "no"})).lookup(USER) is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503),
        httpx.Response(401),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"id": str(USER)}),
        httpx.ConnectError,
        httpx.ReadTimeout,
    ],
)
async def test_anything_else_is_upstream_unavailable(answer: Scripted) -> None:
    with pytest.raises(UpstreamUnavailable):
        await directory(answer).lookup(USER)


@pytest.fixture
async def engine(notification_db: NotificationDb, db: Database) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(notification_db.service_url, schema=SCHEMA)
    yield engine
    await engine.dispose()


@pytest.mark.integration
async def test_learning_a_contact_holds_no_connection_while_users_answers(
    engine: AsyncEngine, db: Database
) -> None:
    checked_out: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        checked_out.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        return httpx.Response(200, json=ACCOUNT)

    users = UsersDirectory(
        httpx.AsyncClient(transport=httpx.MockTransport(handle)), "http://users", "t", timeout=1.0
    )
    sessions = make_sessionmaker(engine)
    await contacts.learn(sessions, users, USER)
    await contacts.learn(sessions, users, USER)  # known now: not asked again
    assert checked_out == [0]
    rows = await db.fetch(f"SELECT email, full_name FROM {SCHEMA}.contacts WHERE user_id = $1", USER)
    assert [tuple(row) for row in rows] == [("ada@example.com", "Ada")]


@pytest.mark.integration
@pytest.mark.parametrize("account", [None, {**ACCOUNT, "is_active": False}])
async def test_nothing_is_stored_for_an_unknown_or_deactivated_account(
    engine: AsyncEngine, db: Database, account: dict[str, object] | None
) -> None:
    answer = httpx.Response(404) if account is None else httpx.Response(200, json=account)
    await contacts.learn(make_sessionmaker(engine), directory(answer), USER)
    assert await db.count("contacts") == 0
