"""``gateway serve``: run the gateway on ``GATEWAY_PORT`` (8000)."""

from __future__ import annotations

from gateway.settings import GatewaySettings
from gateway.splice import server_options
from shared.service.cli import ServiceCli

cli = ServiceCli(
    name="gateway",
    description="The API gateway.",
    settings=GatewaySettings,
    app="gateway.app:create_app",
    uvicorn_options=server_options,
)
main = cli.main
