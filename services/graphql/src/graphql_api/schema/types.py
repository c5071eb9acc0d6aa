"""The object types: each mirrors a REST resource (contract sections 4 and 7), camelCase."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry

from graphql_api.context import Context
from graphql_api.schema.scalars import JSON, Long
from shared.db.pagination import Cursor

Node = TypeVar("Node")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@strawberry.type(description="An account.")
class User:
    id: strawberry.ID
    email: str
    full_name: str
    roles: list[str]
    is_active: bool
    # Section 9 fields: null while the users service does not report them.
    email_verified: bool | None
    avatar_url: str | None
    created_at: datetime | None

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> User:
        return cls(
            id=strawberry.ID(data["id"]),
            email=data["email"],
            full_name=data["full_name"],
            roles=list(data["roles"]),
            is_active=data["is_active"],
            email_verified=data.get("email_verified"),
            avatar_url=data.get("avatar_url"),
            created_at=_time(data.get("created_at")),
        )


@strawberry.enum(description="Where an order is in its life: pending -> paid -> shipped -> delivered.")
class OrderStatus(enum.Enum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@strawberry.type
class OrderItem:
    sku: str
    name: str
    quantity: int
    unit_price_cents: Long
    line_total_cents: Long


@strawberry.type(description="An order and its lines; amounts are in minor units of its currency.")
class Order:
    id: strawberry.ID
    user_id: strawberry.ID
    status: OrderStatus
    currency: str
    items: list[OrderItem]
    total_cents: Long
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The order's owner (one users call for a whole page of orders).")
    async def user(self, info: strawberry.Info[Context, None]) -> User:
        return User.from_rest(await info.context.users.load(uuid.UUID(self.user_id)))

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> Order:
        return cls(
            id=strawberry.ID(data["id"]),
            user_id=strawberry.ID(data["user_id"]),
            status=OrderStatus(data["status"]),
            currency=data["currency"],
            items=[
                OrderItem(
                    sku=item["sku"],
                    name=item["name"],
                    quantity=item["quantity"],
                    unit_price_cents=Long(item["unit_price_cents"]),
                    line_total_cents=Long(item["line_total_cents"]),
                )
                for item in data["items"]
            ],
            total_cents=Long(data["total_cents"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
        )


@strawberry.type
class Notification:
    id: strawberry.ID
    type: str
    title: str
    body: str
    data: JSON
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> Notification:
        return cls(
            id=strawberry.ID(data["id"]),
            type=data["type"],
            title=data["title"],
            body=data["body"],
            data=JSON(data.get("data") or {}),
            created_at=datetime.fromisoformat(data["created_at"]),
            read_at=_time(data.get("read_at")),
        )


@strawberry.type(description="One frame of the caller's event stream, as /ws sends it.")
class StreamEvent:
    offset: int
    id: strawberry.ID
    event: str
    data: JSON
    ts: datetime


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    # Nullable, as in Relay's spec and GitHub's API: a node whose field failed (its user could not be
    # loaded) becomes null alone instead of taking the whole page with it.
    node: Node | None


@strawberry.type
class Connection(Generic[Node]):
    """A Relay-style page over a REST page: each edge's cursor is the REST cursor after that item."""

    edges: list[Edge[Node] | None]
    page_info: PageInfo


def connection(page: dict[str, Any], node: Callable[[dict[str, Any]], Node]) -> Connection[Node]:
    """A ``Connection`` of ``node(item)`` for a REST page ``{"items", "next_cursor"}``."""
    edges: list[Edge[Node] | None] = []
    cursor = None
    for item in page["items"]:
        # The services' own cursor encoding (shared.db.pagination), so any edge's cursor is a valid
        # ``after``: the REST API would hand out the same one after that item.
        cursor = Cursor(datetime.fromisoformat(item["created_at"]), uuid.UUID(item["id"])).encode()
        edges.append(Edge(cursor=cursor, node=node(item)))
    next_cursor = page.get("next_cursor")
    end = next_cursor or cursor
    return Connection(edges=edges, page_info=PageInfo(has_next_page=next_cursor is not None, end_cursor=end))
