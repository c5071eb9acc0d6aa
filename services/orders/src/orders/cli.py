"""``orders serve | migrate | bootstrap-db | purge``: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from orders.idempotency.purge import purge_once
from orders.settings import SCHEMA, Settings
from shared.db.bootstrap import InfrastructureUnavailable, bootstrap, check_postgres
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrations import upgrade
from shared.observability.logs import configure_logging
from shared.web.server import serve

log = logging.getLogger("orders.cli")


def migrations_dir() -> Path:
    """``services/orders/migrations`` in a checkout, ``orders/migrations`` inside a built wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the orders migrations directory is missing from this installation")


def _serve(settings: Settings) -> int:
    from orders.app import create_app

    asyncio.run(check_postgres(settings.service_database_url()))
    serve(create_app(settings), settings, service="orders", port=settings.port)
    return 0


def _migrate(settings: Settings) -> int:
    # As the service role, which owns the schema: the tables end up owned by it, not by an admin.
    try:
        upgrade(migrations_dir(), settings.service_database_url(), SCHEMA)
    except (OSError, DBAPIError) as exc:
        raise InfrastructureUnavailable(f"cannot migrate schema {SCHEMA}: {exc}") from exc
    log.info("migrations applied", extra={"schema": SCHEMA})
    return 0


def _bootstrap_db(settings: Settings) -> int:
    if settings.environment == "production":
        log.error("bootstrap-db is for development; in production a DBA creates roles and schemas")
        return 2
    asyncio.run(bootstrap(settings.database_url, [settings.service_database()]))
    log.info("database bootstrapped", extra={"schema": SCHEMA, "role": settings.db_role})
    return 0


async def _purge_keys(settings: Settings) -> int:
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=1)
    try:
        return await purge_once(make_sessionmaker(engine), settings.idempotency_retention)
    finally:
        await engine.dispose()


def _purge(settings: Settings) -> int:
    try:
        deleted = asyncio.run(_purge_keys(settings))
    except (OSError, DBAPIError) as exc:
        raise InfrastructureUnavailable(f"cannot purge idempotency keys: {exc}") from exc
    log.info(
        "idempotency keys purged",
        extra={"deleted": deleted, "older_than_s": settings.idempotency_retention.total_seconds()},
    )
    return 0


COMMANDS = {"serve": _serve, "migrate": _migrate, "bootstrap-db": _bootstrap_db, "purge": _purge}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orders", description="The orders service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP server (ORDERS_PORT, default 8002)")
    sub.add_parser("migrate", help="apply the schema migrations as the service role")
    sub.add_parser("bootstrap-db", help="development only: create the database, role and schema")
    sub.add_parser(
        "purge",
        help="delete idempotency keys older than ORDERS_IDEMPOTENCY_RETENTION (the server does it too)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        # Messages only: pydantic's own rendering repeats the input, which may hold a secret.
        problems = "\n".join(
            f"  {'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        parser.exit(2, f"orders: invalid configuration:\n{problems}\n")
    configure_logging("orders", settings.log_level, settings.log_format)
    try:
        return COMMANDS[args.command](settings)
    except InfrastructureUnavailable as exc:
        # One readable sentence instead of a traceback: the usual cause is a stopped database.
        log.error(str(exc))
        return 3
