"""Queries: each field is one call to the service that owns the data, with the caller's token."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry

from graphql_api.context import Context
from graphql_api.errors import bad_input
from graphql_api.schema.types import Connection, Notification, Order, OrderStatus, User, connection

Info = strawberry.Info[Context, None]
DEFAULT_FIRST = 20
# REST names of list parameters -> the GraphQL arguments a field error names.
PAGE_ARGUMENTS = {"limit": "first", "cursor": "after", "user_id": "userId", "unread_only": "unreadOnly"}


def valid_id(value: str, argument: str = "id") -> uuid.UUID:
    """Ids go into URL paths: anything but a UUID is refused here, before a service sees it."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_input(argument, "Not a valid id.") from None


def page(first: int | None, after: str | None, **filters: Any) -> dict[str, Any]:
    """REST's list parameters; an argument left out (or null) is left out of the call."""
    params = {"limit": DEFAULT_FIRST if first is None else first, "cursor": after or None, **filters}
    return {name: value for name, value in params.items() if value is not None}


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
