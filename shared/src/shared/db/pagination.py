"""Keyset pagination: ``?limit=`` and an opaque ``?cursor=``, newest first.

The query parameters are read by ``shared.service.dependencies.PageParamsDep``. Most lists page by
creation time and id (``Cursor``); a log with its own sequence (a room's messages) by offset
(``OffsetCursor``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel

from shared.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 2**63 - 1


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last item seen: its creation time and id (the tie-breaker)."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        return _encode({"t": self.created_at.isoformat(), "i": str(self.id)})

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The position a cursor names; anything this class did not make is a 422, never a 500."""
        cursor = cls._parse(_decode(value))
        if cursor is None:
            raise _invalid()
        return cursor

    @classmethod
    def _parse(cls, data: object) -> Cursor | None:
        # A client can put any JSON in a cursor: check each type rather than trust the shape.
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("t"), str)
            or not isinstance(data.get("i"), str)
        ):
            return None
        try:
            created_at = datetime.fromisoformat(data["t"])
            # In UTC now, so a time at the edge of the calendar fails here rather than in the driver.
            utc = created_at.astimezone(UTC) if created_at.tzinfo is not None else None
            return None if utc is None else cls(created_at=utc, id=uuid.UUID(data["i"]))
        except (ValueError, OverflowError):
            return None


@dataclass(frozen=True, slots=True)
class OffsetCursor:
    """Position after the last item seen in a log paged by offset, newest first: that item's offset."""

    offset: int

    def encode(self) -> str:
        return _encode({"o": self.offset})

    @classmethod
    def decode(cls, value: str) -> OffsetCursor:
        """As ``Cursor.decode``: anything this class did not make is a 422."""
        data = _decode(value)
        offset = data.get("o") if isinstance(data, dict) else None
        if not isinstance(offset, int) or isinstance(offset, bool) or not 1 <= offset <= MAX_OFFSET:
            raise _invalid()
        return cls(offset)


def _encode(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _decode(value: str) -> object:
    """The JSON inside a cursor, or None when there is none."""
    try:
        data: object = orjson.loads(
            base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        )
    except (binascii.Error, ValueError):
        return None
    return data


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid.",
        [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}],
    )


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: Cursor | None
