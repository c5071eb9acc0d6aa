"""``users serve | migrate | bootstrap-db | jobs``: the operator's entry points."""

from __future__ import annotations

from shared.jobs.cli import jobs_command
from shared.service.cli import ServiceCli
from users.settings import Settings

cli = ServiceCli(
    name="users",
    description="The users service.",
    settings=Settings,
    app="users.app:create_app",
    commands={"jobs": jobs_command("users.jobs")},
)
main = cli.main
migrations_dir = cli.migrations_dir
