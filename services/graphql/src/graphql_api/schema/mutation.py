"""Mutations: each is one call to the service that owns the data, with the caller's token."""

from __future__ import annotations

import strawberry

from graphql_api.context import Context
from graphql_api.schema.arguments import valid_id
from graphql_api.schema.scalars import Long
from graphql_api.schema.types import Notification, Order, Room, RoomMessage, User

Info = strawberry.Info[Context, None]


@strawberry.input
class OrderItemInput:
    sku: str
    name: str
    quantity: int
    unit_price_cents: Long


@strawberry.input
class CreateOrderInput:
    currency: str
    items: list[OrderItemInput]


async def _transition(info: Info, id: str, action: str) -> Order:
    ctx = info.context
    path = f"/api/v1/orders/{valid_id(id)}/{action}"
    answer = await ctx.services.call(
        "orders", "POST", path, ctx.caller, idempotency_key=ctx.caller.idempotency_key
    )
    return Order.from_rest(answer)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Change the caller's full name.")
    async def update_me(self, info: Info, full_name: str) -> User:
        ctx = info.context
        answer = await ctx.services.call(
            "users", "PATCH", "/api/v1/users/me", ctx.caller, json={"full_name": full_name}
        )
        return User.from_rest(answer)

    @strawberry.mutation(
        description="Place an order. The same idempotencyKey (or Idempotency-Key header) with the same "
        "input returns the first order again."
    )
    async def create_order(
        self, info: Info, input: CreateOrderInput, idempotency_key: str | None = strawberry.UNSET
    ) -> Order:
        ctx = info.context
        body = {
            "currency": input.currency,
            "items": [
                {
                    "sku": item.sku,
                    "name": item.name,
                    "quantity": item.quantity,
                    "unit_price_cents": int(item.unit_price_cents),
                }
                for item in input.items
            ],
        }
        answer = await ctx.services.call(
            "orders",
            "POST",
            "/api/v1/orders",
            ctx.caller,
            json=body,
            idempotency_key=idempotency_key or ctx.caller.idempotency_key,
            arguments={"body": "input", "idempotency-key": "idempotencyKey"},
        )
        return Order.from_rest(answer)

    @strawberry.mutation(description="Pay a pending order (its owner).")
    async def pay_order(self, info: Info, id: strawberry.ID) -> Order:
        return await _transition(info, id, "pay")

    @strawberry.mutation(description="Cancel a pending or paid order (its owner or an admin).")
    async def cancel_order(self, info: Info, id: strawberry.ID) -> Order:
        return await _transition(info, id, "cancel")

    @strawberry.mutation(description="Mark a paid order shipped (admins only).")
    async def ship_order(self, info: Info, id: strawberry.ID) -> Order:
        return await _transition(info, id, "ship")

    @strawberry.mutation(description="Mark a shipped order delivered (admins only).")
    async def deliver_order(self, info: Info, id: strawberry.ID) -> Order:
        return await _transition(info, id, "deliver")

    @strawberry.mutation(description="Mark one notification read (idempotent).")
    async def mark_notification_read(self, info: Info, id: strawberry.ID) -> Notification:
        ctx = info.context
        path = f"/api/v1/notifications/{valid_id(id)}/read"
        answer = await ctx.services.call("notification", "POST", path, ctx.caller)
        return Notification.from_rest(answer)

    @strawberry.mutation(description="Mark every notification read; answers how many changed.")
    async def mark_all_notifications_read(self, info: Info) -> int:
        ctx = info.context
        path = "/api/v1/notifications/read-all"
        answer = await ctx.services.call("notification", "POST", path, ctx.caller)
        updated: int = answer["updated"]
        return updated

    @strawberry.mutation(description="Create a chat room; any signed-in user may.")
    async def create_room(self, info: Info, name: str, topic: str | None = strawberry.UNSET) -> Room:
        ctx = info.context
        # Left out (or null): realtime's default, no topic.
        body = {"name": name, "topic": topic} if isinstance(topic, str) else {"name": name}
        answer = await ctx.services.call("realtime", "POST", "/api/v1/rooms", ctx.caller, json=body)
        return Room.from_rest(answer)

    @strawberry.mutation(
        description="Say something in a room. The same clientId again returns the first message, stored once."
    )
    async def post_message(
        self,
        info: Info,
        room_id: strawberry.ID,
        text: str,
        client_id: strawberry.ID | None = strawberry.UNSET,
    ) -> RoomMessage:
        ctx = info.context
        path = f"/api/v1/rooms/{valid_id(room_id, 'roomId')}/messages"
        body = {"text": text}
        if isinstance(client_id, str):  # given, even empty: checked
            body["client_id"] = str(valid_id(client_id, "clientId"))
        answer = await ctx.services.call("realtime", "POST", path, ctx.caller, json=body)
        return RoomMessage.from_rest(answer)
