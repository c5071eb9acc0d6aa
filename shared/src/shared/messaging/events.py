"""The event catalogue as code: one model per event type, inside the contract's envelope.

Producers build these models and consumers parse into them; nobody hand-builds event JSON. The
AsyncAPI document (docs/asyncapi.yaml) is generated from this module (``python -m
shared.messaging.asyncapi``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.observability.request_id import current_request_id

EXCHANGE = "events"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Event(BaseModel):
    """The envelope every message on the ``events`` exchange carries."""

    model_config = ConfigDict(frozen=True)

    summary: ClassVar[str] = ""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: Literal[1] = 1
    source: str
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str | None = Field(default_factory=current_request_id)
    data: EventData


class OrderItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class UserRegisteredData(EventData):
    user_id: uuid.UUID
    email: str
    full_name: str


class UserDeactivatedData(EventData):
    user_id: uuid.UUID


class UserDeletedData(EventData):
    user_id: uuid.UUID


AccountEmailKind = Literal["verify_email", "password_reset"]


class AccountEmailRequestedData(EventData):
    user_id: uuid.UUID
    email: str
    full_name: str
    kind: AccountEmailKind
    # The single-use secret of the link (users stores only its hash); notification builds the link
    # from PUBLIC_URL and renders the e-mail.
    token: str
    expires_at: datetime
    # The verification e-mail sent at registration is also the welcome.
    welcome: bool = False


class OrderCreatedData(EventData):
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    currency: str
    total_cents: int
    items: list[OrderItem]


# Why an order changed status: its customer, an admin, its account's deactivation or erasure, or the
# expire-unpaid-orders job (a pending order left unpaid past ORDERS_UNPAID_TTL).
StatusChangeReason = Literal["user", "admin", "user_deactivated", "user_deleted", "expired"]


class OrderStatusChangedData(EventData):
    order_id: uuid.UUID
    user_id: uuid.UUID
    from_status: str
    to_status: str
    reason: StatusChangeReason


class NotificationCreatedData(EventData):
    notification_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    title: str
    body: str


Channel = Literal["in_app", "email"]


class NotificationRequestedData(EventData):
    user_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(max_length=10_000)
    data: dict[str, Any] = Field(default_factory=dict)
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["in_app"]), min_length=1)


class UserRegistered(Event):
    summary = "A person created an account."
    type: Literal["user.registered"] = "user.registered"
    source: str = "users"
    data: UserRegisteredData


class UserDeactivated(Event):
    summary = "An administrator deactivated an account; it can no longer log in or order."
    type: Literal["user.deactivated"] = "user.deactivated"
    source: str = "users"
    data: UserDeactivatedData


class UserDeleted(Event):
    summary = "An account was erased (by its owner or an admin); its e-mail may register again."
    type: Literal["user.deleted"] = "user.deleted"
    source: str = "users"
    data: UserDeletedData


class AccountEmailRequested(Event):
    summary = "A command from users to notification: e-mail this address a verification or reset link."
    type: Literal["account.email_requested"] = "account.email_requested"
    source: str = "users"
    data: AccountEmailRequestedData


class OrderCreated(Event):
    summary = "An order was placed (status pending)."
    type: Literal["order.created"] = "order.created"
    source: str = "orders"
    data: OrderCreatedData


class OrderStatusChanged(Event):
    summary = "An order moved along its state machine."
    type: Literal["order.status_changed"] = "order.status_changed"
    source: str = "orders"
    data: OrderStatusChangedData


class NotificationCreated(Event):
    summary = "An in-app notification was stored for a user."
    type: Literal["notification.created"] = "notification.created"
    source: str = "notification"
    data: NotificationCreatedData


class NotificationRequested(Event):
    summary = "A command from any service: notify this user in app and/or by e-mail."
    type: Literal["notification.requested"] = "notification.requested"
    data: NotificationRequestedData


CATALOGUE: tuple[type[Event], ...] = (
    UserRegistered,
    UserDeactivated,
    UserDeleted,
    AccountEmailRequested,
    OrderCreated,
    OrderStatusChanged,
    NotificationCreated,
    NotificationRequested,
)

AnyEvent = Annotated[
    UserRegistered
    | UserDeactivated
    | UserDeleted
    | AccountEmailRequested
    | OrderCreated
    | OrderStatusChanged
    | NotificationCreated
    | NotificationRequested,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type_name(model: type[Event]) -> str:
    default = model.model_fields["type"].default
    assert isinstance(default, str)
    return default


EVENT_TYPES: dict[str, type[Event]] = {event_type_name(m): m for m in CATALOGUE}


class UnknownEvent(ValueError):
    """A message whose type or version this code does not know: it goes to the dead-letter queue."""


def parse_event(body: bytes | str) -> Event:
    """Parse and validate a message body into its catalogue model."""
    try:
        event: Event = _ADAPTER.validate_json(body)
    except ValueError as exc:
        raise UnknownEvent(str(exc)) from exc
    return event
