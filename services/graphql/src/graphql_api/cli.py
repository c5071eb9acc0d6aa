"""``graphql_api serve | schema``: run the component, or print the schema docs/schema.graphql holds."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from graphql_api.settings import SERVICE, Settings
from shared.observability.logs import configure_logging
from shared.web.server import serve

log = logging.getLogger("graphql_api.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="graphql_api", description="The graphql component: one GraphQL API over the services."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP server (GRAPHQL_PORT, default 8005)")
    schema = sub.add_parser("schema", help="print the schema in SDL (docs/schema.graphql is this output)")
    schema.add_argument("--output", type=Path, help="write it to this file instead")
    args = parser.parse_args(argv)
    if args.command == "schema":
        from graphql_api.schema import sdl

        text = sdl()
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    try:
        settings = Settings()
    except ValidationError as exc:
        # Messages only: pydantic's own rendering repeats the input, which may hold a secret.
        problems = "\n".join(
            f"  {'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        parser.exit(2, f"graphql: invalid configuration:\n{problems}\n")
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    from graphql_api.app import create_app

    serve(create_app(settings), settings, service=SERVICE, port=settings.port)
    return 0
