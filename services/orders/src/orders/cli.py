"""``orders serve | migrate | bootstrap-db | purge``: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging

from sqlalchemy.exc import DBAPIError

from orders.idempotency.purge import purge_once
from orders.settings import SCHEMA, Settings
from shared.db.bootstrap import InfrastructureUnavailable
from shared.db.engine import make_engine, make_sessionmaker
from shared.service.cli import Command, ServiceCli

log = logging.getLogger("orders.cli")


async def _purge_keys(settings: Settings) -> int:
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=1)
    try:
        return await purge_once(make_sessionmaker(engine), settings.idempotency_retention)
    finally:
        await engine.dispose()


def purge(settings: Settings, _: argparse.Namespace) -> int:
    try:
        deleted = asyncio.run(_purge_keys(settings))
    except (OSError, DBAPIError) as exc:
        raise InfrastructureUnavailable(f"cannot purge idempotency keys: {exc}") from exc
    log.info(
        "idempotency keys purged",
        extra={"deleted": deleted, "older_than_s": settings.idempotency_retention.total_seconds()},
    )
    return 0


cli = ServiceCli(
    name="orders",
    description="The orders service.",
    settings=Settings,
    app="orders.app:create_app",
    commands={
        "purge": Command(
            "delete idempotency keys older than ORDERS_IDEMPOTENCY_RETENTION (the server does it too)", purge
        )
    },
)
main = cli.main
migrations_dir = cli.migrations_dir
