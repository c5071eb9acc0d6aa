"""Subscriptions over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graphql_api import stream
from graphql_api.context import Context
from graphql_api.schema.arguments import valid_id
from graphql_api.schema.types import RoomMessage, StreamEvent

Info = strawberry.Info[Context, None]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The caller's event stream, as /ws sends it; since replays what followed that offset."
    )
    async def events(
        self, info: Info, since: int | None = strawberry.UNSET
    ) -> AsyncGenerator[StreamEvent, None]:
        async for event in stream.events(info.context, since if isinstance(since, int) else None):
            yield event

    @strawberry.subscription(
        description="A room's messages as they are said; since replays those that followed that offset."
    )
    async def room_messages(
        self, info: Info, room_id: strawberry.ID, since: int | None = strawberry.UNSET
    ) -> AsyncGenerator[RoomMessage, None]:
        room = valid_id(room_id, "roomId")
        async for message in stream.room_messages(
            info.context, room, since if isinstance(since, int) else None
        ):
            yield message
