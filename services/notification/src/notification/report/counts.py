"""Counting events into ``daily_counts`` (inside the consumer's transaction, so once per event id)
and reading one day's figures back, e-mails included."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from notification.email.models import FAILED, Email, EmailAttempt
from notification.report.models import DailyCount
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.events import Event, OrderCreated, OrderStatusChanged, UserRegistered

STATUS_PREFIX = "orders_"
_PENDING = "daily_counts"


def metric_of(event: Event) -> str | None:
    if isinstance(event, UserRegistered):
        return "users_registered"
    if isinstance(event, OrderCreated):
        return "orders_created"
    if isinstance(event, OrderStatusChanged):
        return STATUS_PREFIX + event.data.to_status
    return None


def record(uow: UnitOfWork, event: Event) -> None:
    """Count ``event`` on the UTC day it occurred (the producer's clock, not when it arrived).

    Written just before the transaction commits, a batch's counts as one statement (the consumer
    handles a batch of events in one transaction), so it costs no round trip per event.
    """
    metric = metric_of(event)
    if metric is None:
        return
    pending: Counter[tuple[date, str]] | None = uow.state.get(_PENDING)
    if pending is None:
        pending = uow.state[_PENDING] = Counter()
        uow.before_commit(functools.partial(_write, uow.session, pending))
    pending[(event.occurred_at.astimezone(UTC).date(), metric)] += 1


async def _write(session: AsyncSession, pending: Counter[tuple[date, str]]) -> None:
    rows = [{"day": day, "metric": metric, "count": count} for (day, metric), count in pending.items()]
    statement = insert(DailyCount).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[DailyCount.day, DailyCount.metric],
            set_={"count": DailyCount.count + statement.excluded.count},
        )
    )


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    users_registered: int
    orders_created: int
    orders_by_status: dict[str, int]
    emails_sent: int
    emails_failed: int


async def figures(engine: AsyncEngine, day: date) -> DayFigures:
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    last_attempt = (
        select(func.max(EmailAttempt.attempted_at)).where(EmailAttempt.email_id == Email.id).scalar_subquery()
    )
    async with engine.connect() as conn:
        rows = await conn.execute(select(DailyCount.metric, DailyCount.count).where(DailyCount.day == day))
        counts = {metric: count for metric, count in rows}
        sent = await conn.scalar(select(func.count()).where(Email.sent_at >= start, Email.sent_at < end))
        failed = await conn.scalar(
            select(func.count()).where(
                and_(Email.status == FAILED, last_attempt >= start, last_attempt < end)
            )
        )
    return DayFigures(
        day=day,
        users_registered=counts.pop("users_registered", 0),
        orders_created=counts.pop("orders_created", 0),
        orders_by_status={
            metric.removeprefix(STATUS_PREFIX): count
            for metric, count in sorted(counts.items())
            if metric.startswith(STATUS_PREFIX)
        },
        emails_sent=int(sent or 0),
        emails_failed=int(failed or 0),
    )
