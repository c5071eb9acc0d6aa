"""E-mail verification and password reset: single-use, time-bound tokens, e-mailed through notification."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractQueue

from shared.messaging.events import EXCHANGE, AccountEmailRequested

from .conftest import PASSWORD, Api, UsersDb
from .test_users_events import take

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def mails(test_amqp_url: str) -> AsyncIterator[AbstractQueue]:
    """What users asks notification to e-mail."""
    connection = await aio_pika.connect(test_amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"users-mails-{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(exchange, "account.email_requested")
    yield queue
    await connection.close()


async def next_mail(queue: AbstractQueue, timeout: float = 10.0) -> AccountEmailRequested:
    [message] = await take(queue, 1, timeout)
    return AccountEmailRequested.model_validate_json(message.body)


async def sql(db: UsersDb, query: str, *args: object) -> None:
    conn = await asyncpg.connect(db.admin_url)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


async def test_registration_asks_for_a_welcome_verification_email_and_the_link_verifies_once(
    api: Api, mails: AbstractQueue
) -> None:
    user = await api.register("verify@example.com", full_name="Vera")
    mail = await next_mail(mails)
    assert (mail.data.kind, mail.data.welcome, mail.data.email) == (
        "verify_email",
        True,
        "verify@example.com",
    )
    assert str(mail.data.user_id) == user["id"]
    assert len(mail.data.token) >= 40

    response = await api.client.post("/api/v1/auth/verify-email", json={"token": mail.data.token})
    assert response.status_code == 200, response.text
    assert response.json()["email_verified"] is True
    headers = await api.bearer("verify@example.com")
    assert (await api.client.get("/api/v1/users/me", headers=headers)).json()["email_verified"] is True

    again = await api.client.post("/api/v1/auth/verify-email", json={"token": mail.data.token})
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "payload",
    [{}, {"token": ""}, {"token": "x" * 257}, {"token": "a\x00b"}, {"token": 7}, {"token": "unknown-token"}],
)
async def test_a_bad_verification_token_is_4xx(api: Api, payload: dict[str, object]) -> None:
    response = await api.client.post("/api/v1/auth/verify-email", json=payload)
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_verification_token_is_refused(
    api: Api, mails: AbstractQueue, clean_db: UsersDb
) -> None:
    await api.register("late@example.com")
    mail = await next_mail(mails)
    await sql(clean_db, "UPDATE users.verification_tokens SET expires_at = now() - interval '1 second'")
    response = await api.client.post("/api/v1/auth/verify-email", json={"token": mail.data.token})
    assert response.status_code == 400


async def test_resend_needs_a_token_and_is_once_a_minute(
    api: Api, mails: AbstractQueue, clean_db: UsersDb
) -> None:
    await api.register("resend@example.com")
    first = await next_mail(mails)
    assert (await api.client.post("/api/v1/auth/verify-email/resend")).status_code == 401
    headers = await api.bearer("resend@example.com")
    too_soon = await api.client.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert too_soon.status_code == 429
    assert int(too_soon.headers["retry-after"]) >= 1
    # A minute later (moved in the database rather than waited for).
    await sql(
        clean_db, "UPDATE users.verification_tokens SET created_at = created_at - interval '61 seconds'"
    )
    response = await api.client.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert response.status_code == 202
    second = await next_mail(mails)
    assert (second.data.kind, second.data.welcome) == ("verify_email", False)
    assert second.data.token != first.data.token
    ok = await api.client.post("/api/v1/auth/verify-email", json={"token": second.data.token})
    assert ok.status_code == 200


async def test_reset_sets_a_new_password_ends_every_session_and_spends_the_link(
    api: Api, mails: AbstractQueue
) -> None:
    await api.register("reset@example.com")
    await next_mail(mails)
    old = await api.tokens("reset@example.com")

    response = await api.client.post("/api/v1/auth/password-reset", json={"email": "RESET@example.com"})
    assert response.status_code == 202
    mail = await next_mail(mails)
    assert (mail.data.kind, mail.data.email) == ("password_reset", "reset@example.com")

    confirm = {"token": mail.data.token, "new_password": NEW_PASSWORD}
    done = await api.client.post("/api/v1/auth/password-reset/confirm", json=confirm)
    assert done.status_code == 204, done.text
    assert (await api.refresh(old["refresh_token"])).status_code == 400
    assert (await api.login("reset@example.com")).status_code == 400
    assert (await api.login("reset@example.com", NEW_PASSWORD)).status_code == 200
    again = await api.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": mail.data.token, "new_password": "yet another one"},
    )
    assert again.status_code == 400
    assert (await api.login("reset@example.com", NEW_PASSWORD)).status_code == 200


async def test_a_password_change_spends_earlier_reset_links(api: Api, mails: AbstractQueue) -> None:
    await api.register("change@example.com")
    await next_mail(mails)
    await api.client.post("/api/v1/auth/password-reset", json={"email": "change@example.com"})
    mail = await next_mail(mails)
    headers = await api.bearer("change@example.com")
    changed = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204
    confirm = {"token": mail.data.token, "new_password": "the attacker's choice"}
    assert (await api.client.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 400


async def test_an_expired_reset_link_is_refused(api: Api, mails: AbstractQueue, clean_db: UsersDb) -> None:
    await api.register("slow@example.com")
    await next_mail(mails)
    await api.client.post("/api/v1/auth/password-reset", json={"email": "slow@example.com"})
    mail = await next_mail(mails)
    await sql(
        clean_db,
        "UPDATE users.verification_tokens SET expires_at = now() - interval '1 second'"
        " WHERE purpose = 'password_reset'",
    )
    confirm = {"token": mail.data.token, "new_password": NEW_PASSWORD}
    assert (await api.client.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 400
    assert (await api.login("slow@example.com")).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"token": "x", "new_password": "short"},
        {"token": "", "new_password": NEW_PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"token": "a\x00", "new_password": NEW_PASSWORD},
    ],
)
async def test_hostile_reset_confirmations_are_4xx(api: Api, payload: dict[str, object]) -> None:
    response = await api.client.post("/api/v1/auth/password-reset/confirm", json=payload)
    assert response.status_code in (400, 422)


async def test_at_most_three_reset_emails_an_hour_per_address(api: Api, mails: AbstractQueue) -> None:
    await api.register("many@example.com")
    await next_mail(mails)
    for _ in range(5):
        response = await api.client.post("/api/v1/auth/password-reset", json={"email": "many@example.com"})
        assert response.status_code == 202
    sent = await take(mails, 5, timeout=3.0)
    assert len(sent) == 3


async def test_an_unknown_address_gets_the_same_answer_in_about_the_same_time(
    api: Api, mails: AbstractQueue
) -> None:
    await api.register("known@example.com")
    await next_mail(mails)

    async def timed(email: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        response = await api.client.post("/api/v1/auth/password-reset", json={"email": email})
        return time.perf_counter() - started, response.status_code, response.content

    known, unknown = [], []
    # Interleaved, so a burst of load on the machine falls on both alike; the known address is capped
    # at 3 e-mails an hour, so a fresh one each time keeps the real work in every known request.
    for n in range(6):
        await api.register(f"known{n}@example.com")
        await next_mail(mails)
        known.append(await timed(f"known{n}@example.com"))
        unknown.append(await timed(f"nobody{n}@example.com"))
        await asyncio.sleep(0)
    assert {(status, body) for _, status, body in known} == {(status, body) for _, status, body in unknown}
    assert len({(status, body) for _, status, body in known}) == 1
    # Medians, and a generous bound: the answer floor makes both about 250 ms; on a loaded machine
    # either can be late, but not the one consistently later than the other by a wide margin.
    known_median = statistics.median(t for t, _, _ in known)
    unknown_median = statistics.median(t for t, _, _ in unknown)
    assert min(known_median, unknown_median) >= 0.25
    assert abs(known_median - unknown_median) < 0.5 * max(known_median, unknown_median)
