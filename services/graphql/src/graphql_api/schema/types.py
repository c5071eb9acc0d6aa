"""The object types: each mirrors a REST resource (contract sections 4 and 7), camelCase."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry

from graphql_api.context import Context
from graphql_api.errors import NOT_FOUND, ApiError
from graphql_api.schema.arguments import DEFAULT_FIRST, PAGE_ARGUMENTS, page
from graphql_api.schema.scalars import JSON, Long
from shared.db.pagination import Cursor, OffsetCursor

Node = TypeVar("Node")
Info = strawberry.Info[Context, None]


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
    async def user(self, info: Info) -> User:
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


@strawberry.type(description="A message said in a room; its offset rises by exactly 1 per message.")
class RoomMessage:
    id: strawberry.ID
    room: strawberry.ID
    offset: int
    user_id: strawberry.ID
    # The author's name when the message was said.
    user_name: str
    text: str
    client_id: strawberry.ID | None
    ts: datetime

    @strawberry.field(
        description="The author's account; null once it is deleted (one users call for a whole page)."
    )
    async def user(self, info: Info) -> User | None:
        try:
            return User.from_rest(await info.context.users.load(uuid.UUID(self.user_id)))
        except ApiError as error:
            if error.code == NOT_FOUND:
                return None  # the messages of a deleted account stay, under the name they were said with
            raise

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> RoomMessage:
        """A message resource, or a ``message`` frame of realtime's ``/ws`` (the same fields)."""
        client_id = data.get("client_id")
        return cls(
            id=strawberry.ID(data["id"]),
            room=strawberry.ID(data["room"]),
            offset=data["offset"],
            user_id=strawberry.ID(data["user_id"]),
            user_name=data["user_name"],
            text=data["text"],
            client_id=strawberry.ID(client_id) if client_id else None,
            ts=datetime.fromisoformat(data["ts"]),
        )


@strawberry.type(description="Someone in a room now, with how many connections they have open in it.")
class RoomMember:
    user_id: strawberry.ID
    user_name: str
    connections: int


@strawberry.type(description="A chat room: any signed-in user may read it and talk in it.")
class Room:
    id: strawberry.ID
    name: str
    topic: str
    created_by: strawberry.ID
    created_at: datetime
    last_offset: int

    @strawberry.field(description="The room's retained messages, newest first.")
    async def messages(
        self, info: Info, first: int | None = DEFAULT_FIRST, after: str | None = strawberry.UNSET
    ) -> Connection[RoomMessage]:
        ctx = info.context
        answer = await ctx.services.call(
            "realtime",
            "GET",
            f"/api/v1/rooms/{self.id}/messages",
            ctx.caller,
            params=page(first, after),
            arguments=PAGE_ARGUMENTS,
        )
        return connection(answer, RoomMessage.from_rest, cursor=_offset_cursor)

    @strawberry.field(description="Who is in the room now, on every replica.")
    async def presence(self, info: Info) -> list[RoomMember]:
        ctx = info.context
        answer = await ctx.services.call("realtime", "GET", f"/api/v1/rooms/{self.id}/presence", ctx.caller)
        return [
            RoomMember(
                user_id=strawberry.ID(member["user_id"]),
                user_name=member["user_name"],
                connections=member["connections"],
            )
            for member in answer["users"]
        ]

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> Room:
        return cls(
            id=strawberry.ID(data["id"]),
            name=data["name"],
            topic=data["topic"],
            created_by=strawberry.ID(data["created_by"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            last_offset=data["last_offset"],
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


def _keyset_cursor(item: dict[str, Any]) -> str:
    return Cursor(datetime.fromisoformat(item["created_at"]), uuid.UUID(item["id"])).encode()


def _offset_cursor(item: dict[str, Any]) -> str:
    return OffsetCursor(item["offset"]).encode()


def connection(
    page: dict[str, Any],
    node: Callable[[dict[str, Any]], Node],
    cursor: Callable[[dict[str, Any]], str] = _keyset_cursor,
) -> Connection[Node]:
    """A ``Connection`` of ``node(item)`` for a REST page ``{"items", "next_cursor"}``.

    Each edge's cursor is the services' own encoding (shared.db.pagination) of its item, so any edge's
    cursor is a valid ``after``: the REST API would hand out the same one after that item.
    """
    edges: list[Edge[Node] | None] = []
    last = None
    for item in page["items"]:
        last = cursor(item)
        edges.append(Edge(cursor=last, node=node(item)))
    next_cursor = page.get("next_cursor")
    end = next_cursor or last
    return Connection(edges=edges, page_info=PageInfo(has_next_page=next_cursor is not None, end_cursor=end))
