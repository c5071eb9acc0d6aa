"""Database errors translated at the boundary: a value the database refuses is the client's fault."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# SQLSTATE class 22, "data exception": a value out of range, not valid for its type, a U+0000 in text.
DATA_EXCEPTION = "22"


def is_data_error(exc: BaseException) -> bool:
    """True when Postgres (or asyncpg, encoding an argument) refused a value the request carried."""
    if not isinstance(exc, DBAPIError):
        return False
    # SQLAlchemy wraps the driver's adapted error, which wraps asyncpg's own; either may carry it.
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(DATA_EXCEPTION):
            return True
    return False
