"""Keyset pagination: ``?limit=`` and an opaque ``?cursor=``, newest first.

The query parameters are read by ``shared.service.dependencies.PageParamsDep``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson
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
