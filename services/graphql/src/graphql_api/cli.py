"""``graphql_api serve | schema``: run the component, or print the schema docs/schema.graphql holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphql_api.settings import Settings
from shared.service.cli import Command, ServiceCli


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="write it to this file instead of printing it")


def schema(_: Settings, args: argparse.Namespace) -> int:
    from graphql_api.schema import sdl

    text = sdl()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


cli = ServiceCli(
    # The package's name: ``graphql`` is graphql-core's.
    name="graphql_api",
    description="The graphql component: one GraphQL API over the services.",
    settings=Settings,
    app="graphql_api.app:create_app",
    commands={
        "schema": Command(
            "print the schema in SDL (docs/schema.graphql is this output)", schema, _schema_arguments
        )
    },
)
main = cli.main
