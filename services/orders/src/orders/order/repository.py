"""Every query on ``orders.orders`` and ``orders.order_items``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Select,
    SmallInteger,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from orders.database import OUTBOX
from orders.order.models import ConcurrentChange, Order, OrderLine, OrderStatus
from shared.db.pagination import Cursor
from shared.messaging.events import Event
from shared.messaging.outbox import insert_events, outbox_rows, wake_relay


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """``user_id`` None means every user's orders (admins only; the service decides)."""

    user_id: uuid.UUID | None = None
    status: OrderStatus | None = None


# The version an order row starts at (``Order``'s optimistic lock), as the ORM would have set it.
FIRST_VERSION = 1


def _place_statement() -> Select[tuple[datetime, datetime, Any]]:
    """The order, its lines (arrays, so one fixed text for any number) and its events, and the NOTIFY.

    Data-modifying CTEs all run, in one statement and one snapshot; the lines' foreign key is checked
    at the end of the statement, when the order row exists.
    """
    orders, items = cast(Table, Order.__table__), cast(Table, OrderLine.__table__)
    placed = (
        insert(orders)
        .values(
            id=bindparam("id"),
            user_id=bindparam("user_id"),
            status=bindparam("status"),
            currency=bindparam("currency"),
            total_cents=bindparam("total_cents"),
            version=bindparam("version"),
        )
        .returning(orders.c.created_at, orders.c.updated_at)
        .cte("placed")
    )
    lines = (
        func.unnest(
            bindparam("line_position", type_=ARRAY(SmallInteger)),
            bindparam("line_sku", type_=ARRAY(Text)),
            bindparam("line_name", type_=ARRAY(Text)),
            bindparam("line_quantity", type_=ARRAY(Integer)),
            bindparam("line_unit_price_cents", type_=ARRAY(BigInteger)),
            bindparam("line_total_cents", type_=ARRAY(BigInteger)),
        )
        .table_valued(*LINE_COLUMNS)
        .render_derived()
    )
    add_lines = insert(items).from_select(
        ["order_id", *LINE_COLUMNS],
        select(bindparam("id", type_=Uuid), *(lines.c[name] for name in LINE_COLUMNS)),
    )
    return (
        select(placed.c.created_at, placed.c.updated_at, wake_relay(OUTBOX))
        .add_cte(add_lines.cte("lines"))
        .add_cte(insert_events(OUTBOX).cte("events"))
    )


LINE_COLUMNS = ("position", "sku", "name", "quantity", "unit_price_cents", "line_total_cents")
# Built once: compiled and prepared once per connection, instead of per request.
_PLACE = _place_statement()


async def insert_placed(db: AsyncSession | AsyncConnection, order: Order, events: Sequence[Event]) -> Order:
    """Insert a new order, its lines and the events it recorded (into the outbox, waking the relay)
    in one statement; ``created_at``/``updated_at`` come back with it.

    Not through the session's unit of work: flushing the aggregate took an INSERT per table plus the
    outbox's INSERT and NOTIFY, four round trips and most of a create's CPU in the profile, where
    this is one. The object stays out of any session (the request ends here). Being one statement,
    it is atomic on its own, so ``db`` may be a connection in autocommit.
    """
    lines = order.items
    params: dict[str, Any] = {
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "version": FIRST_VERSION,
        "line_position": [line.position for line in lines],
        "line_sku": [line.sku for line in lines],
        "line_name": [line.name for line in lines],
        "line_quantity": [line.quantity for line in lines],
        "line_unit_price_cents": [line.unit_price_cents for line in lines],
        "line_total_cents": [line.line_total_cents for line in lines],
        **outbox_rows(events),
    }
    created_at, updated_at, _ = (await db.execute(_PLACE, params)).one()
    order.created_at, order.updated_at, order.version = created_at, updated_at, FIRST_VERSION
    return order


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.get(Order, order_id)

    async def add(self, order: Order, events: Sequence[Event]) -> Order:
        """``insert_placed`` in this session's transaction."""
        return await insert_placed(self.session, order, events)

    async def flush(self) -> None:
        """Write pending changes, each UPDATE checked against the version read (see ``Order``)."""
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise ConcurrentChange from exc

    async def newest_first(self, where: OrderFilter, limit: int, after: Cursor | None) -> list[Order]:
        """One keyset page ordered by (created_at, id) descending, starting after ``after``."""
        stmt = select(Order).order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
        if where.user_id is not None:
            stmt = stmt.where(Order.user_id == where.user_id)
        if where.status is not None:
            stmt = stmt.where(Order.status == where.status)
        if after is not None:
            stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(after.created_at, after.id))
        return list(await self.session.scalars(stmt))

    async def unpaid_since_before(self, cutoff: datetime, limit: int) -> list[Order]:
        """Up to ``limit`` orders pending since before ``cutoff``, oldest first, locked; an order a
        request holds right now is skipped (the next batch or run takes it, if it is still pending)."""
        stmt = (
            select(Order)
            .where(Order.status == OrderStatus.PENDING, Order.created_at < cutoff)
            .order_by(Order.created_at)
            .limit(limit)
            .with_for_update(of=Order, skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return list(await self.session.scalars(stmt))

    async def pending_of_user(self, user_id: uuid.UUID) -> list[Order]:
        """The user's pending orders, locked so that this batch does not fail on a concurrent pay:
        that pay either committed first (the order is no longer pending) or fails on our version."""
        return await self.of_user_in(user_id, (OrderStatus.PENDING,))

    async def of_user_in(self, user_id: uuid.UUID, statuses: Sequence[OrderStatus]) -> list[Order]:
        """The user's orders in one of ``statuses``, oldest first, locked."""
        stmt = (
            select(Order)
            .where(Order.user_id == user_id, Order.status.in_(statuses))
            .order_by(Order.created_at, Order.id)
            .with_for_update(of=Order)
            .execution_options(populate_existing=True)
        )
        return list(await self.session.scalars(stmt))
