"""Database errors translated at the boundary: a value the database refuses is the client's fault; a
database that cannot take the request now (down, out of connections, shutting down) is a 503."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# What a database that cannot be reached raises, for a loop that backs off and tries again (the outbox
# relay, a consumer asking whether its database answers): SQLAlchemy wraps driver errors (a connection
# dropped mid-query arrives as DBAPIError), asyncpg raises a refused connection as the socket's OSError.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    DBAPIError,
    OSError,
)

# SQLSTATE class 22, "data exception": a value out of range, not valid for its type, a U+0000 in text.
DATA_EXCEPTION = "22"
# Class 08 "connection exception", 53 "insufficient resources" (too many connections, out of memory or
# disk), 57P01-57P03 "admin shutdown", "crash shutdown", "cannot connect now" (starting, recovering).
UNAVAILABLE = ("08", "53", "57P01", "57P02", "57P03")


def _sqlstates(exc: DBAPIError) -> list[str]:
    # SQLAlchemy wraps the driver's adapted error, which wraps asyncpg's own; either may carry it.
    states = []
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str):
            states.append(sqlstate)
    return states


def is_data_error(exc: BaseException) -> bool:
    """True when Postgres (or asyncpg, encoding an argument) refused a value the request carried."""
    if not isinstance(exc, DBAPIError):
        return False
    return any(state.startswith(DATA_EXCEPTION) for state in _sqlstates(exc))


def is_unavailable(exc: BaseException) -> bool:
    """True when the database could not take the request now, whatever the request held.

    No free connection in the pool in time (every one is busy), a connection refused or broken (asyncpg
    raises the socket's ``ConnectionError`` as it is when it cannot connect), or Postgres refusing work.
    """
    if isinstance(exc, PoolTimeout | ConnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or any(state.startswith(UNAVAILABLE) for state in _sqlstates(exc))
