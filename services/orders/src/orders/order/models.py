"""The order aggregate: its lines, its state machine, and the events each change produces."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import Mapped, mapped_column, reconstructor, relationship
from sqlalchemy.sql import func, text

from orders.database import Base
from orders.settings import SCHEMA
from shared.errors import Conflict
from shared.messaging.events import (
    Event,
    OrderCreated,
    OrderCreatedData,
    OrderItem,
    OrderStatusChanged,
    OrderStatusChangedData,
    StatusChangeReason,
)


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# The whole state machine: pending -> paid -> shipped -> delivered; pending|paid -> cancelled.
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class TransitionNotAllowed(Conflict):
    """The order's current status does not allow the requested one."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"An order that is {current.value} cannot become {target.value}.")
        self.current = current
        self.target = target


class ConcurrentChange(Conflict):
    """Another transition of this order committed after this request read it."""

    def __init__(self) -> None:
        super().__init__("The order was changed by another request at the same time; read it again.")


@dataclass(frozen=True, slots=True)
class NewLine:
    """One line as the customer asked for it; the order computes its total."""

    sku: str
    name: str
    quantity: int
    unit_price_cents: int


_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        CheckConstraint("total_cents >= 0", name="total_cents"),
        # The two list queries: a user's orders and everyone's, both newest first.
        Index("ix_orders_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_orders_created_at_id", "created_at", "id"),
        # What expire-unpaid-orders looks for: pending orders, oldest first.
        Index("ix_orders_pending_created_at", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    status: Mapped[OrderStatus] = mapped_column(
        SqlEnum(
            OrderStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [s.value for s in statuses],
            validate_strings=True,
        )
    )
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    items: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", lazy="selectin", cascade="all, delete-orphan"
    )
    version: Mapped[int] = mapped_column(Integer)

    # created_at/updated_at come back with the INSERT/UPDATE (RETURNING), no extra SELECT. Every
    # UPDATE is checked against the version it read (optimistic locking): of two transitions that
    # both saw the same status, the second finds the version moved on and fails, so concurrent
    # transitions never both succeed, even pay and cancel, which would be legal one after the other.
    __mapper_args__ = {"eager_defaults": True, "version_id_col": version}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._events: list[Event] = []

    @reconstructor
    def _on_load(self) -> None:
        self._events = []

    @classmethod
    def place(cls, *, user_id: uuid.UUID, currency: str, lines: Sequence[NewLine]) -> Order:
        """A new pending order; line and order totals are computed here, never taken from the client."""
        items = [
            OrderLine(
                position=position,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                line_total_cents=line.quantity * line.unit_price_cents,
            )
            for position, line in enumerate(lines)
        ]
        order = cls(
            id=uuid.uuid4(),
            user_id=user_id,
            status=OrderStatus.PENDING,
            currency=currency,
            total_cents=sum(item.line_total_cents for item in items),
            items=items,
        )
        order._events.append(
            OrderCreated(
                data=OrderCreatedData(
                    order_id=order.id,
                    user_id=user_id,
                    status=order.status.value,
                    currency=currency,
                    total_cents=order.total_cents,
                    items=[item.as_event_item() for item in items],
                )
            )
        )
        return order

    def pay(self) -> None:
        self._become(OrderStatus.PAID, "user")

    def ship(self) -> None:
        self._become(OrderStatus.SHIPPED, "admin")

    def deliver(self) -> None:
        self._become(OrderStatus.DELIVERED, "admin")

    def cancel(self, reason: StatusChangeReason) -> None:
        self._become(OrderStatus.CANCELLED, reason)

    def can_become(self, target: OrderStatus) -> bool:
        return target in TRANSITIONS[self.status]

    def pull_events(self) -> list[Event]:
        """The events recorded since the last pull; the caller writes them to the outbox."""
        events, self._events = self._events, []
        return events

    def _become(self, target: OrderStatus, reason: StatusChangeReason) -> None:
        current = self.status
        if not self.can_become(target):
            raise TransitionNotAllowed(current, target)
        self.status = target
        self._events.append(
            OrderStatusChanged(
                data=OrderStatusChangedData(
                    order_id=self.id,
                    user_id=self.user_id,
                    from_status=current.value,
                    to_status=target.value,
                    reason=reason,
                )
            )
        )


class OrderLine(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 1000", name="quantity"),
        CheckConstraint("unit_price_cents BETWEEN 0 AND 1000000000", name="unit_price_cents"),
        CheckConstraint("line_total_cents = quantity * unit_price_cents", name="line_total_cents"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.orders.id", ondelete="CASCADE"), primary_key=True
    )
    # Keeps the lines in the order the customer gave them.
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    line_total_cents: Mapped[int] = mapped_column(BigInteger)

    def as_event_item(self) -> OrderItem:
        return OrderItem(
            sku=self.sku,
            name=self.name,
            quantity=self.quantity,
            unit_price_cents=self.unit_price_cents,
            line_total_cents=self.line_total_cents,
        )
