"""``orders serve | migrate | bootstrap-db | jobs``: the operator's entry points."""

from __future__ import annotations

from orders.settings import Settings
from shared.jobs.cli import jobs_command
from shared.service.cli import ServiceCli

cli = ServiceCli(
    name="orders",
    description="The orders service.",
    settings=Settings,
    app="orders.app:create_app",
    # expire-unpaid-orders, purge-idempotency-keys (which replaced ``orders purge``), purge-outbox.
    commands={"jobs": jobs_command("orders.jobs")},
)
main = cli.main
migrations_dir = cli.migrations_dir
