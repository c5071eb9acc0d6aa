"""Order use cases. They flush; the request's unit of work commits (and rolls back on any error)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orders.database import OUTBOX
from orders.idempotency import service as idempotency
from orders.idempotency.service import Answer, request_fingerprint
from orders.order.gate import Admission
from orders.order.models import Order, OrderStatus
from orders.order.repository import OrderFilter, OrderRepository, insert_placed
from orders.order.schemas import CreateOrderRequest, OrderOut
from orders.upstream.users import UsersClient
from shared.auth.verifier import Principal
from shared.db.pagination import Cursor, Page, PageParams
from shared.db.unit_of_work import unit_of_work
from shared.errors import Forbidden, NotFound
from shared.messaging.outbox import add_event


def render(order: Order) -> str:
    return OrderOut.model_validate(order).model_dump_json()


async def create_order(
    sessions: async_sessionmaker[AsyncSession],
    single_statements: AsyncEngine,
    users: UsersClient,
    caller: Principal,
    data: CreateOrderRequest,
    idempotency_key: str | None,
) -> Answer:
    """Place a pending order, or give back the answer an earlier request with this key got.

    ``sessions`` run transactions; ``single_statements`` connects in autocommit, for a write that is
    one statement and so atomic by itself.
    """
    if idempotency_key is None:
        await users.ensure_may_order(caller.user_id)
        order = _place(caller, data)
        # The order, its lines and its events are one statement (``insert_placed``): atomic on its
        # own, so it runs without the BEGIN and COMMIT round trips of a transaction, nor a session.
        async with single_statements.connect() as conn:
            await insert_placed(conn, order, order.pull_events())
        return Answer(status_code=201, body=render(order), order_id=order.id)
    fingerprint = request_fingerprint(data)
    earlier = await idempotency.earlier_answer(sessions, caller.user_id, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier
    # Before the transaction: no row is written, and no connection is held, while users answers.
    await users.ensure_may_order(caller.user_id)
    async with unit_of_work(sessions) as uow:
        winner = await idempotency.claim_or_replay(uow.session, caller.user_id, idempotency_key, fingerprint)
        if winner is not None:
            return winner
        order = _place(caller, data)
        await OrderRepository(uow.session).add(order, order.pull_events())
        answer = Answer(status_code=201, body=render(order), order_id=order.id)
        await idempotency.remember(uow.session, caller.user_id, idempotency_key, answer)
    return answer


def _place(caller: Principal, data: CreateOrderRequest) -> Order:
    return Order.place(
        user_id=caller.user_id, currency=data.currency, lines=[item.as_line() for item in data.items]
    )


async def list_orders(
    session: AsyncSession,
    caller: Principal,
    page: PageParams,
    *,
    status: OrderStatus | None = None,
    user_id: uuid.UUID | None = None,
) -> Page[OrderOut]:
    """Newest first. A user sees their own orders only; ``user_id`` narrows an admin's view."""
    if not caller.is_admin:
        if user_id is not None and user_id != caller.user_id:
            return Page(items=[], next_cursor=None)
        user_id = caller.user_id
    # One extra row tells whether another page exists.
    rows = await OrderRepository(session).newest_first(
        OrderFilter(user_id=user_id, status=status), page.limit + 1, page.cursor
    )
    items, more = rows[: page.limit], len(rows) > page.limit
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if more else None
    return Page(items=[OrderOut.model_validate(order) for order in items], next_cursor=next_cursor)


async def get_order(session: AsyncSession, caller: Principal, order_id: uuid.UUID) -> Order:
    """The order if the caller may see it; someone else's is "not found", so ids reveal nothing."""
    order = await OrderRepository(session).get(order_id)
    if order is None or not (caller.is_admin or order.user_id == caller.user_id):
        raise NotFound("No order with this id.")
    return order


async def pay(session: AsyncSession, caller: Principal, order_id: uuid.UUID, slot: Admission) -> Order:
    order = await get_order(session, caller, order_id)
    if not order.user_id == caller.user_id:
        raise Forbidden("Only the customer who placed the order can pay it.")
    slot.check()
    order.pay()
    return await _save(session, order)


async def cancel(session: AsyncSession, caller: Principal, order_id: uuid.UUID, slot: Admission) -> Order:
    order = await get_order(session, caller, order_id)
    slot.check()
    order.cancel("user" if order.user_id == caller.user_id else "admin")
    return await _save(session, order)


async def ship(session: AsyncSession, caller: Principal, order_id: uuid.UUID, slot: Admission) -> Order:
    order = await _as_admin(session, caller, order_id)
    slot.check()
    order.ship()
    return await _save(session, order)


async def deliver(session: AsyncSession, caller: Principal, order_id: uuid.UUID, slot: Admission) -> Order:
    order = await _as_admin(session, caller, order_id)
    slot.check()
    order.deliver()
    return await _save(session, order)


async def cancel_pending_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Cancel every pending order of a deactivated account; each change goes to the outbox."""
    repo = OrderRepository(session)
    orders = await repo.pending_of_user(user_id)
    for order in orders:
        order.cancel("user_deactivated")
    await repo.flush()
    await record_events(session, *orders)
    return len(orders)


async def expire_unpaid(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Cancel up to ``limit`` orders left pending since before ``cutoff`` (reason ``expired``)."""
    repo = OrderRepository(session)
    orders = await repo.unpaid_since_before(cutoff, limit)
    for order in orders:
        order.cancel("expired")
    await repo.flush()
    await record_events(session, *orders)
    return len(orders)


async def cancel_open_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Cancel every open (pending or paid) order of an erased account; the others stay for the books."""
    repo = OrderRepository(session)
    orders = await repo.of_user_in(user_id, (OrderStatus.PENDING, OrderStatus.PAID))
    for order in orders:
        order.cancel("user_deleted")
    await repo.flush()
    await record_events(session, *orders)
    return len(orders)


async def _as_admin(session: AsyncSession, caller: Principal, order_id: uuid.UUID) -> Order:
    # The router already demands the admin role; checked again so no other caller can skip it.
    if not caller.is_admin:
        raise Forbidden("This action needs the admin role.")
    return await get_order(session, caller, order_id)


async def record_events(session: AsyncSession, *orders: Order) -> None:
    """Move each order's pending events into the outbox, in this transaction: they are published
    if and only if it commits."""
    for order in orders:
        for event in order.pull_events():
            await add_event(session, OUTBOX, event)


async def _save(session: AsyncSession, order: Order) -> Order:
    await OrderRepository(session).flush()
    await record_events(session, order)
    return order
