"""``realtime serve | migrate | bootstrap-db | trim``: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from realtime.settings import SCHEMA, Settings
from shared.db.bootstrap import InfrastructureUnavailable, bootstrap, check_postgres
from shared.db.engine import make_engine
from shared.db.migrations import upgrade
from shared.observability.logs import configure_logging

log = logging.getLogger("realtime.cli")


def migrations_dir() -> Path:
    """``services/realtime/migrations`` in a checkout, ``realtime/migrations`` inside a built wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the realtime migrations directory is missing from this installation")


def _serve(settings: Settings) -> int:
    from realtime.app import create_app
    from realtime.server import serve

    asyncio.run(check_postgres(settings.service_database_url()))
    serve(create_app(settings), settings)
    return 0


def _migrate(settings: Settings) -> int:
    url = settings.service_database_url()
    asyncio.run(check_postgres(url))
    # As the service role, which owns the schema: the tables end up owned by it, not by an admin.
    try:
        upgrade(migrations_dir(), url, SCHEMA)
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


def _trim(settings: Settings) -> int:
    from realtime.streams.retention import RetentionPolicy, trim

    async def run() -> None:
        engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=1)
        try:
            policy = RetentionPolicy(
                max_age=settings.retention_max_age, max_events=settings.retention_max_events
            )
            result = await trim(engine, policy)
        except (OSError, DBAPIError) as exc:
            raise InfrastructureUnavailable(f"cannot trim schema {SCHEMA}: {exc}") from exc
        finally:
            await engine.dispose()
        log.info(
            "another replica is trimming; nothing done" if result.skipped else "streams trimmed",
            extra={"by_count": result.by_count, "by_age": result.by_age, "inbox": result.inbox},
        )

    asyncio.run(check_postgres(settings.service_database_url()))
    asyncio.run(run())
    return 0


COMMANDS = {"serve": _serve, "migrate": _migrate, "bootstrap-db": _bootstrap_db, "trim": _trim}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realtime", description="The realtime service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP/WebSocket server (REALTIME_PORT, default 8004)")
    sub.add_parser("migrate", help="apply the schema migrations as the service role")
    sub.add_parser("bootstrap-db", help="development only: create the database, role and schema")
    sub.add_parser("trim", help="apply the retention policy to every stream now")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        # Messages only: pydantic's own rendering repeats the input, which may hold a secret.
        problems = "\n".join(
            f"  {'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        parser.exit(2, f"realtime: invalid configuration:\n{problems}\n")
    configure_logging("realtime", settings.log_level, settings.log_format)
    try:
        return COMMANDS[args.command](settings)
    except InfrastructureUnavailable as exc:
        # One readable sentence instead of a traceback: the usual cause is a stopped database.
        log.error(str(exc))
        return 3
