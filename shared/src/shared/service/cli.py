"""One command line for every component: ``serve``; ``migrate`` and ``bootstrap-db`` for a service that
owns a schema; and whatever commands a service adds (orders' ``purge``).

What an operator can fix is said in one line, not a traceback: an invalid configuration (exit 2, the
messages only: pydantic's own rendering repeats the input, which may hold a secret) and a database or
broker that cannot be reached (exit 3).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.resources
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp

from shared.db.bootstrap import InfrastructureUnavailable, bootstrap, check_amqp, check_postgres
from shared.db.migrations import upgrade
from shared.observability.logs import configure_logging
from shared.service.settings import BaseServiceSettings, DatabaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Command(Generic[S]):
    """A subcommand: ``run`` gets the settings and the parsed arguments and returns the exit status."""

    help: str
    run: Callable[[S, argparse.Namespace], int]
    # Declares the command's own arguments, or subcommands of its own (``jobs run <name>``).
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


@dataclass(frozen=True)
class ServiceCli(Generic[S]):
    """A component's command line; ``name`` is both the program and its package."""

    name: str
    description: str
    settings: type[S]
    # ``module:function`` building the ASGI app from the settings: imported by ``serve`` only, so
    # ``migrate`` and ``bootstrap-db`` (run for every service by ``make run``) load neither it nor uvicorn.
    app: str
    # Checked before serving: said once, readably, rather than as a consumer that never becomes ready.
    needs_broker: bool = False
    # uvicorn settings of the component's own (realtime: WebSocket limits).
    uvicorn_options: Callable[[S], dict[str, Any]] | None = None
    commands: Mapping[str, Command[S]] = field(default_factory=dict)

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"{self.name}.cli")

    def migrations_dir(self) -> Path:
        """``services/<name>/migrations`` in a checkout, ``<name>/migrations`` inside a built wheel."""
        here = Path(str(importlib.resources.files(self.name)))
        for candidate in (here / "migrations", here.parents[1] / "migrations"):
            if (candidate / "env.py").is_file():
                return candidate
        raise FileNotFoundError(f"the {self.name} migrations directory is missing from this installation")

    def main(self, argv: Sequence[str] | None = None) -> int:
        commands = self._commands()
        parser = argparse.ArgumentParser(prog=self.name, description=self.description)
        subparsers = parser.add_subparsers(dest="command", required=True)
        for name, command in commands.items():
            command.arguments(subparsers.add_parser(name, help=command.help))
        args = parser.parse_args(argv)
        try:
            settings = self.settings()
        except ValidationError as exc:
            problems = "\n".join(
                f"  {'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
            )
            parser.exit(2, f"{self.name}: invalid configuration:\n{problems}\n")
        configure_logging(self.name, settings.log_level, settings.log_format)
        try:
            return commands[args.command].run(settings, args)
        except InfrastructureUnavailable as exc:
            # The usual cause is a stopped database or broker; the message says which and what to do.
            self.log.error(str(exc))
            return 3

    def _commands(self) -> dict[str, Command[S]]:
        port = f"{self.settings.model_config.get('env_prefix', '')}PORT"
        default = self.settings.model_fields["port"].default

        def port_option(parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--port", type=int, default=None, help=f"overrides {port}")

        commands: dict[str, Command[S]] = {
            "serve": Command(f"run the server ({port}, default {default})", self._serve, port_option)
        }
        if issubclass(self.settings, DatabaseServiceSettings):
            commands["migrate"] = Command("apply the schema migrations as the service role", self._migrate)
            commands["bootstrap-db"] = Command(
                "development only: create the database, role and schema", self._bootstrap_db
            )
        if clash := commands.keys() & self.commands.keys():
            raise ValueError(f"{self.name} redefines the commands {sorted(clash)}")
        return commands | dict(self.commands)

    def _serve(self, settings: S, args: argparse.Namespace) -> int:
        from shared.web.server import serve  # uvicorn and the web stack: for this command only

        if isinstance(settings, DatabaseServiceSettings):
            asyncio.run(check_postgres(settings.service_database_url()))
        if self.needs_broker:
            check_amqp(settings.amqp_url)
        module, _, function = self.app.partition(":")
        create_app = cast(Callable[[S], ASGIApp], getattr(importlib.import_module(module), function))
        options = self.uvicorn_options(settings) if self.uvicorn_options else {}
        port = settings.port if args.port is None else args.port
        serve(create_app(settings), settings, service=self.name, port=port, **options)
        return 0

    def _migrate(self, settings: S, args: argparse.Namespace) -> int:
        database = _database(settings)
        url, schema = database.service_database_url(), database.database_schema
        asyncio.run(check_postgres(url))
        # As the service role, which owns the schema: the tables end up owned by it, not by an admin.
        try:
            upgrade(self.migrations_dir(), url, schema)
        except (OSError, DBAPIError) as exc:
            raise InfrastructureUnavailable(f"cannot migrate schema {schema}: {exc}") from exc
        self.log.info("migrations applied", extra={"schema": schema})
        return 0

    def _bootstrap_db(self, settings: S, args: argparse.Namespace) -> int:
        database = _database(settings)
        if database.environment == "production":
            self.log.error("bootstrap-db is for development; in production a DBA creates roles and schemas")
            return 2
        asyncio.run(bootstrap(database.database_url, [database.service_database()]))
        self.log.info(
            "database bootstrapped", extra={"schema": database.database_schema, "role": database.db_role}
        )
        return 0


def _database(settings: BaseServiceSettings) -> DatabaseServiceSettings:
    if not isinstance(settings, DatabaseServiceSettings):
        raise TypeError(f"{type(settings).__qualname__} names no database of its own")
    return settings
