"""Queries: each field is one call to the service that owns the data, with the caller's token."""

from __future__ import annotations

import strawberry

from graphql_api.context import Context
from graphql_api.schema.arguments import DEFAULT_FIRST, PAGE_ARGUMENTS, page, valid_id
from graphql_api.schema.types import (
    Connection,
    Notification,
    Order,
    OrderStatus,
    Room,
    User,
    connection,
)

Info = strawberry.Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(description="The caller's own account.")
    async def me(self, info: Info) -> User:
        ctx = info.context
        return User.from_rest(await ctx.services.call("users", "GET", "/api/v1/users/me", ctx.caller))

    @strawberry.field(description="One account (admins only).")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        ctx = info.context
        path = f"/api/v1/users/{valid_id(id)}"
        return User.from_rest(await ctx.services.call("users", "GET", path, ctx.caller))

    @strawberry.field(description="Every account, newest first (admins only).")
    async def users(
        self, info: Info, first: int | None = DEFAULT_FIRST, after: str | None = strawberry.UNSET
    ) -> Connection[User]:
        ctx = info.context
        answer = await ctx.services.call(
            "users", "GET", "/api/v1/users", ctx.caller, params=page(first, after), arguments=PAGE_ARGUMENTS
        )
        return connection(answer, User.from_rest)

    @strawberry.field(description="One order; someone else's is NOT_FOUND.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        ctx = info.context
        path = f"/api/v1/orders/{valid_id(id)}"
        return Order.from_rest(await ctx.services.call("orders", "GET", path, ctx.caller))

    @strawberry.field(description="The caller's orders, newest first; admins see everyone's.")
    async def orders(
        self,
        info: Info,
        first: int | None = DEFAULT_FIRST,
        after: str | None = strawberry.UNSET,
        status: OrderStatus | None = strawberry.UNSET,
        user_id: strawberry.ID | None = strawberry.UNSET,
    ) -> Connection[Order]:
        ctx = info.context
        params = page(
            first,
            after,
            status=status.value if status else None,
            user_id=str(valid_id(user_id, "userId")) if user_id else None,
        )
        answer = await ctx.services.call(
            "orders", "GET", "/api/v1/orders", ctx.caller, params=params, arguments=PAGE_ARGUMENTS
        )
        return connection(answer, Order.from_rest)

    @strawberry.field(description="The caller's notifications, newest first.")
    async def notifications(
        self,
        info: Info,
        first: int | None = DEFAULT_FIRST,
        after: str | None = strawberry.UNSET,
        unread_only: bool | None = False,
    ) -> Connection[Notification]:
        ctx = info.context
        answer = await ctx.services.call(
            "notification",
            "GET",
            "/api/v1/notifications",
            ctx.caller,
            params=page(first, after, unread_only=bool(unread_only)),
            arguments=PAGE_ARGUMENTS,
        )
        return connection(answer, Notification.from_rest)

    @strawberry.field(description="How many of the caller's notifications are unread.")
    async def unread_count(self, info: Info) -> int:
        ctx = info.context
        path = "/api/v1/notifications/unread-count"
        answer = await ctx.services.call("notification", "GET", path, ctx.caller)
        count: int = answer["count"]
        return count

    @strawberry.field(description="Every chat room, newest first.")
    async def rooms(
        self, info: Info, first: int | None = DEFAULT_FIRST, after: str | None = strawberry.UNSET
    ) -> Connection[Room]:
        ctx = info.context
        answer = await ctx.services.call(
            "realtime",
            "GET",
            "/api/v1/rooms",
            ctx.caller,
            params=page(first, after),
            arguments=PAGE_ARGUMENTS,
        )
        return connection(answer, Room.from_rest)

    @strawberry.field(description="One chat room, with its messages and who is in it.")
    async def room(self, info: Info, id: strawberry.ID) -> Room | None:
        ctx = info.context
        path = f"/api/v1/rooms/{valid_id(id)}"
        return Room.from_rest(await ctx.services.call("realtime", "GET", path, ctx.caller))
