"""Keyset pagination: ``?limit=`` and an opaque ``?cursor=``, newest first."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar

import orjson
from fastapi import Depends, Query
from pydantic import BaseModel

from shared.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last item seen: its creation time and id (the tie-breaker)."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = orjson.dumps({"t": self.created_at.isoformat(), "i": str(self.id)})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = orjson.loads(raw)
            return cls(created_at=datetime.fromisoformat(data["t"]), id=uuid.UUID(data["i"]))
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValidationFailed(
                "The cursor is not valid.",
                [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}],
            ) from exc


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: Cursor | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="From a previous next_cursor")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=Cursor.decode(cursor) if cursor else None)


PageParamsDep = Annotated[PageParams, Depends(page_params)]
