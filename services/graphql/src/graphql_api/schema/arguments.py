"""What several fields' arguments share: ids checked before they go into a URL, and REST's paging."""

from __future__ import annotations

import uuid
from typing import Any

from graphql_api.errors import bad_input

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
