"""``python -m gateway serve``: run the gateway on ``GATEWAY_PORT`` (8000)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.web.server import serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="The API gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve HTTP on GATEWAY_PORT")
    run.add_argument("--port", type=int, default=None, help="overrides GATEWAY_PORT")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    if args.command == "serve":
        serve(create_app(settings), settings, service="gateway", port=args.port or settings.port)
    return 0
