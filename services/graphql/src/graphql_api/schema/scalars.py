"""``Long`` (money in minor units, beyond GraphQL's 32-bit ``Int``) and ``JSON`` (event data)."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON

# JavaScript reads integers exactly up to 2^53 - 1; larger ones would lose digits in a browser.
MAX_SAFE = 2**53 - 1


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_SAFE:
        raise ValueError("Long must be an integer between -(2^53 - 1) and 2^53 - 1")
    return value


Long = NewType("Long", int)
# Registered through the schema's scalar_map (schema/__init__.py), so ``Long`` stays a type for mypy.
LONG = strawberry.scalar(
    name="Long",
    description="An integer of up to 53 bits, as a JSON number: money in minor units (cents).",
    serialize=int,
    parse_value=_parse_long,
)

__all__ = ["JSON", "LONG", "Long"]
