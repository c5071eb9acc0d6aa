"""``users serve | migrate | bootstrap-db``: the operator's entry points."""

from __future__ import annotations

from shared.service.cli import ServiceCli
from users.settings import Settings

cli = ServiceCli(
    name="users", description="The users service.", settings=Settings, app="users.app:create_app"
)
main = cli.main
migrations_dir = cli.migrations_dir
