"""``notification serve | migrate | bootstrap-db | jobs``: the operator's entry points."""

from __future__ import annotations

from notification.settings import Settings
from shared.jobs.cli import jobs_command
from shared.service.cli import ServiceCli

cli = ServiceCli(
    name="notification",
    description="The notification service: in-app notifications and e-mail.",
    settings=Settings,
    app="notification.app:create_app",
    # Without the broker it has nothing to do: refused at the start rather than never ready.
    needs_broker=True,
    commands={"jobs": jobs_command("notification.jobs")},
)
main = cli.main
migrations_dir = cli.migrations_dir
