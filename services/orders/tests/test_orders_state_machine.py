"""The order aggregate on its own: totals, every allowed and every forbidden transition, events."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import pytest

from orders.order.gate import TransitionGate
from orders.order.models import (
    TRANSITIONS,
    ConcurrentChange,
    NewLine,
    Order,
    OrderStatus,
    TransitionNotAllowed,
)
from shared.messaging.events import OrderCreated, OrderStatusChanged

ACTIONS: dict[OrderStatus, Callable[[Order], None]] = {
    OrderStatus.PAID: Order.pay,
    OrderStatus.SHIPPED: Order.ship,
    OrderStatus.DELIVERED: Order.deliver,
    OrderStatus.CANCELLED: lambda order: order.cancel("user"),
}
REASONS = {
    OrderStatus.PAID: "user",
    OrderStatus.SHIPPED: "admin",
    OrderStatus.DELIVERED: "admin",
    OrderStatus.CANCELLED: "user",
}

ALLOWED = {
    (OrderStatus.PENDING, OrderStatus.PAID),
    (OrderStatus.PENDING, OrderStatus.CANCELLED),
    (OrderStatus.PAID, OrderStatus.SHIPPED),
    (OrderStatus.PAID, OrderStatus.CANCELLED),
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
}
EVERY_PAIR = list(itertools.product(OrderStatus, ACTIONS))


def placed() -> Order:
    return Order.place(
        user_id=uuid.uuid4(),
        currency="EUR",
        lines=[NewLine("A-1", "Apple", 3, 120), NewLine("B_2", "Bread", 1, 250)],
    )


def in_status(status: OrderStatus) -> Order:
    order = placed()
    order.status = status
    order.pull_events()
    return order


def test_place_computes_line_and_order_totals() -> None:
    order = placed()
    assert order.status is OrderStatus.PENDING
    assert [(i.position, i.line_total_cents) for i in order.items] == [(0, 360), (1, 250)]
    assert order.total_cents == 610


def test_place_records_order_created_with_the_lines() -> None:
    order = placed()
    [event] = order.pull_events()
    assert isinstance(event, OrderCreated)
    assert event.data.order_id == order.id
    assert event.data.user_id == order.user_id
    assert event.data.status == "pending"
    assert event.data.total_cents == 610
    assert [i.model_dump() for i in event.data.items] == [
        {"sku": "A-1", "name": "Apple", "quantity": 3, "unit_price_cents": 120, "line_total_cents": 360},
        {"sku": "B_2", "name": "Bread", "quantity": 1, "unit_price_cents": 250, "line_total_cents": 250},
    ]
    assert order.pull_events() == []


def test_the_table_is_the_contract() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transition_moves_and_records_an_event(current: OrderStatus, target: OrderStatus) -> None:
    order = in_status(current)
    ACTIONS[target](order)
    assert order.status is target
    [event] = order.pull_events()
    assert isinstance(event, OrderStatusChanged)
    assert (event.data.from_status, event.data.to_status) == (current.value, target.value)
    assert event.data.reason == REASONS[target]
    assert (event.data.order_id, event.data.user_id) == (order.id, order.user_id)


@pytest.mark.parametrize(("current", "target"), [p for p in EVERY_PAIR if p not in ALLOWED])
def test_forbidden_transition_is_a_conflict_and_changes_nothing(
    current: OrderStatus, target: OrderStatus
) -> None:
    order = in_status(current)
    with pytest.raises(TransitionNotAllowed) as raised:
        ACTIONS[target](order)
    assert raised.value.status == 409
    assert current.value in raised.value.detail
    assert order.status is current
    assert order.pull_events() == []


def test_full_life_records_one_event_per_step() -> None:
    order = placed()
    order.pay()
    order.ship()
    order.deliver()
    events = order.pull_events()
    assert [type(e) for e in events] == [OrderCreated] + [OrderStatusChanged] * 3
    assert [e.data.to_status for e in events[1:] if isinstance(e, OrderStatusChanged)] == [
        "paid",
        "shipped",
        "delivered",
    ]


def test_the_gate_admits_one_transition_per_order_at_a_time() -> None:
    gate = TransitionGate()
    first, second = uuid.uuid4(), uuid.uuid4()
    with gate.admit(first) as held:
        held.check()
        with gate.admit(second) as other:
            other.check()
        with pytest.raises(ConcurrentChange) as raised, gate.admit(first) as refused:
            refused.check()
        assert raised.value.status == 409
    with gate.admit(first) as again:
        again.check()  # released, even after the refusal
