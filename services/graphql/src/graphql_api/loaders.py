"""DataLoaders: one users call for all the users a page of orders or messages names (contract section 7)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from graphql_api.errors import NOT_FOUND, ApiError
from graphql_api.services import Services

# users' /internal/users?ids= takes at most this many.
MAX_BATCH = 100


def users_loader(services: Services, request_id: str | None) -> DataLoader[uuid.UUID, dict[str, Any]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[dict[str, Any] | BaseException]:
        try:
            answer = await services.internal(
                "users", "/internal/users", {"ids": ",".join(map(str, ids))}, request_id
            )
        except ApiError as error:
            # Each field that wanted a user fails alone; the rest of the page still resolves.
            return [error for _ in ids]
        found = {item["id"]: item for item in answer["items"]}
        return [found.get(str(user_id)) or ApiError(NOT_FOUND, "No user with this id.") for user_id in ids]

    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)
