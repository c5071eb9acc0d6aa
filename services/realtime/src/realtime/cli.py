"""``realtime serve | migrate | bootstrap-db | trim | jobs``: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError

from realtime.settings import SCHEMA, Settings
from shared.db.bootstrap import InfrastructureUnavailable, check_postgres
from shared.db.engine import make_engine
from shared.jobs.cli import jobs_command
from shared.service.cli import Command, ServiceCli

log = logging.getLogger("realtime.cli")


async def _trim(settings: Settings) -> None:
    from realtime.streams.retention import RetentionPolicy, trim

    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=1)
    try:
        policy = RetentionPolicy(max_age=settings.retention_max_age, max_events=settings.retention_max_events)
        result = await trim(engine, policy)
    except (OSError, DBAPIError) as exc:
        raise InfrastructureUnavailable(f"cannot trim schema {SCHEMA}: {exc}") from exc
    finally:
        await engine.dispose()
    log.info(
        "another replica is trimming; nothing done" if result.skipped else "streams trimmed",
        extra={"by_count": result.by_count, "by_age": result.by_age, "inbox": result.inbox},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    from realtime.server import websocket_options  # uvicorn and FastAPI: for ``serve`` only

    return websocket_options(settings)


def trim(settings: Settings, _: argparse.Namespace) -> int:
    asyncio.run(check_postgres(settings.service_database_url()))
    asyncio.run(_trim(settings))
    return 0


cli = ServiceCli(
    name="realtime",
    description="The realtime service.",
    settings=Settings,
    app="realtime.app:create_app",
    uvicorn_options=uvicorn_options,
    commands={
        "trim": Command("apply the retention policy to every stream now", trim),
        "jobs": jobs_command("realtime.jobs"),
    },
)
main = cli.main
migrations_dir = cli.migrations_dir
