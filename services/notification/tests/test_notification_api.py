"""The HTTP API as a client sees it: a user's own notifications, pages, read marks, errors."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import generate_latest

from notification.app import create_app
from shared.messaging.events import NotificationRequested, NotificationRequestedData
from shared.testing.users import UsersStandIn
from shared.testing.waits import eventually

from .conftest import Bus, Database, Service

pytestmark = pytest.mark.integration

PREFIX = "/api/v1/notifications"


async def notify(bus: Bus, db: Database, user_id: uuid.UUID, count: int) -> None:
    before = await db.count("notifications", "user_id = $1", user_id)
    for n in range(count):
        data = NotificationRequestedData(user_id=user_id, title=f"Note {n}", body="body", data={"n": n})
        await bus.publish(NotificationRequested(source="orders", data=data))
    await eventually(lambda: db.count("notifications", "user_id = $1", user_id), equals=before + count)


async def all_pages(service: Service, headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await service.client.get(PREFIX, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_pages_are_newest_first_and_cover_everything_once(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    await notify(bus, db, me, 25)
    await notify(bus, db, other, 2)
    pages = await all_pages(service, users.bearer(me), limit=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    items = [item for page in pages for item in page]
    assert len({item["id"] for item in items}) == 25
    assert {item["title"] for item in items} == {f"Note {n}" for n in range(25)}
    keys = [(datetime.fromisoformat(i["created_at"]), i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    first = items[0]
    assert set(first) == {"id", "type", "title", "body", "data", "created_at", "read_at"}
    assert (first["type"], first["read_at"]) == ("message", None)
    assert first["created_at"].endswith("Z")
    default = (await service.client.get(PREFIX, headers=users.bearer(me))).json()
    assert len(default["items"]) == 20
    assert default["next_cursor"]


async def test_read_marks_unread_count_and_read_all(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    me = uuid.uuid4()
    await notify(bus, db, me, 3)
    headers = users.bearer(me)
    count = await service.client.get(f"{PREFIX}/unread-count", headers=headers)
    assert count.json() == {"count": 3}
    target = (await service.client.get(PREFIX, headers=headers)).json()["items"][1]

    first = await service.client.post(f"{PREFIX}/{target['id']}/read", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == target["id"]
    assert first.json()["read_at"] is not None
    again = await service.client.post(f"{PREFIX}/{target['id']}/read", headers=headers)
    assert again.status_code == 200
    assert again.json()["read_at"] == first.json()["read_at"]

    assert (await service.client.get(f"{PREFIX}/unread-count", headers=headers)).json() == {"count": 2}
    unread = (await service.client.get(PREFIX, params={"unread_only": "true"}, headers=headers)).json()
    assert target["id"] not in {item["id"] for item in unread["items"]}
    assert len(unread["items"]) == 2

    read_all = await service.client.post(f"{PREFIX}/read-all", headers=headers)
    assert read_all.status_code == 200
    assert read_all.json() == {"updated": 2}
    assert (await service.client.post(f"{PREFIX}/read-all", headers=headers)).json() == {"updated": 0}
    assert (await service.client.get(f"{PREFIX}/unread-count", headers=headers)).json() == {"count": 0}
    unread = (await service.client.get(PREFIX, params={"unread_only": "true"}, headers=headers)).json()
    assert unread == {"items": [], "next_cursor": None}


async def test_someone_elses_or_an_unknown_notification_is_404(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    owner, intruder = uuid.uuid4(), uuid.uuid4()
    await notify(bus, db, owner, 1)
    [theirs] = (await service.client.get(PREFIX, headers=users.bearer(owner))).json()["items"]
    for target in (theirs["id"], str(uuid.uuid4()), "not-a-uuid"):
        response = await service.client.post(f"{PREFIX}/{target}/read", headers=users.bearer(intruder))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404
    assert (await service.client.get(PREFIX, headers=users.bearer(intruder))).json()["items"] == []
    intruder_all = await service.client.post(f"{PREFIX}/read-all", headers=users.bearer(intruder))
    assert intruder_all.json() == {"updated": 0}
    [still] = (await service.client.get(PREFIX, headers=users.bearer(owner))).json()["items"]
    assert still["read_at"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", PREFIX),
        ("GET", f"{PREFIX}/unread-count"),
        ("POST", f"{PREFIX}/read-all"),
        ("POST", f"{PREFIX}/{uuid.uuid4()}/read"),
    ],
)
async def test_every_endpoint_needs_a_valid_token(
    service: Service, users: UsersStandIn, method: str, path: str
) -> None:
    missing = await service.client.request(method, path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    expired = await service.client.request(
        method, path, headers={"Authorization": f"Bearer {users.token(uuid.uuid4(), ttl=-60)}"}
    )
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"].startswith("Bearer error=")
    forged = await service.client.request(method, path, headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401


async def test_bad_page_parameters_are_422_problems(service: Service, users: UsersStandIn) -> None:
    headers = users.bearer(uuid.uuid4())
    for params in ({"limit": "0"}, {"limit": "101"}, {"cursor": "!!!"}, {"unread_only": "maybe"}):
        response = await service.client.get(PREFIX, params=params, headers=headers)
        assert response.status_code == 422, params
        assert response.json()["errors"]


async def test_health_readiness_and_metrics(service: Service) -> None:
    assert (await service.client.get("/healthz")).status_code == 200
    ready = await service.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = (await service.client.get("/metrics")).text
    for name in ("emails_sent_total", "emails_failed_total", "emails_pending", "events_consumed_total"):
        assert name in metrics
    assert "outbox_pending" in metrics


async def test_one_app_starts_again_after_a_stop_with_its_metrics_made_once(make_settings: Any) -> None:
    """Metrics belong to the app, not to a lifespan: a second start registers nothing twice."""
    app = create_app(make_settings())
    for _ in range(2):
        async with app.router.lifespan_context(app):
            pass
    metrics = generate_latest(app.state.registry).decode()
    for worker in ("event-consumer", "email-sender", "outbox-relay"):
        assert f'worker_up{{worker="{worker}"}} 0.0' in metrics
