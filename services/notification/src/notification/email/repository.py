"""The sender's queries: claim due e-mails, record each attempt's outcome, count what waits.

A claim is a lease, not a held lock: one short transaction picks due rows with ``FOR UPDATE SKIP
LOCKED`` (so replicas never pick the same row), bumps ``attempts`` and pushes ``next_attempt_at`` past
the lease. The SMTP conversation then happens outside any transaction. If the process dies
mid-send, the row simply becomes due again when the lease runs out. ``attempts`` doubles as a
fencing token: an outcome is recorded only by the sender that holds the current attempt.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from notification.email.models import FAILED, PENDING, SENT, Email, EmailAttempt


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    id: uuid.UUID
    template: str
    recipient: str
    subject: str
    text_body: str
    html_body: str | None
    attempt: int


def _seconds(value: float) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, value)


async def claim_due(engine: AsyncEngine, *, limit: int, lease_seconds: float) -> list[ClaimedEmail]:
    due = (
        select(Email.id)
        .where(Email.status == PENDING, Email.next_attempt_at <= func.now())
        .order_by(Email.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Email)
        .where(Email.id.in_(due.scalar_subquery()))
        .values(attempts=Email.attempts + 1, next_attempt_at=func.now() + _seconds(lease_seconds))
        .returning(
            Email.id,
            Email.template,
            Email.recipient,
            Email.subject,
            Email.text_body,
            Email.html_body,
            Email.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(stmt)).all()
    return [ClaimedEmail(*row) for row in rows]


async def record_sent(engine: AsyncEngine, email: ClaimedEmail) -> bool:
    """Mark the e-mail sent; False when another sender took it over meanwhile (lease expired)."""
    return await _finish(engine, email, {"status": SENT, "sent_at": func.now(), "last_error": None}, None)


async def record_failure(
    engine: AsyncEngine, email: ClaimedEmail, error: str, *, retry_in: float | None
) -> bool:
    """Schedule the next attempt ``retry_in`` seconds from now, or give up when it is None."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if retry_in is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = func.now() + _seconds(retry_in)
    return await _finish(engine, email, values, error[:2000])


async def _finish(
    engine: AsyncEngine, email: ClaimedEmail, values: dict[str, Any], error: str | None
) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(Email)
            .where(Email.id == email.id, Email.attempts == email.attempt, Email.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        await conn.execute(
            insert(EmailAttempt)
            .values(
                email_id=email.id,
                attempt=email.attempt,
                outcome=SENT if error is None else "failed",
                error=error,
            )
            .on_conflict_do_nothing()
        )
    return True


async def count_pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).where(Email.status == PENDING)) or 0)
