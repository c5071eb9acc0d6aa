"""The Grafana dashboards as images, drawn from a real run: ``make dashboards``.

Run from the repository root: ``.venv/bin/python -m bench.dashboards`` (needs Postgres, RabbitMQ and
Debian's ``prometheus``; no Grafana: none can be installed here). It makes a throwaway database and
RabbitMQ vhost, starts every component as ``make run`` does, starts Prometheus scraping each one every
second, drives ``--seconds`` of traffic through the gateway (``bench/dashboards/traffic.py`` says
what), then evaluates every query of every panel of every dashboard in ``deploy/grafana/dashboards``
over the run with Prometheus's ``query_range`` (``$__rate_interval`` fixed at ``--rate-interval``,
variables at their saved defaults) and draws each dashboard to ``deploy/grafana/images/<uid>.png``.
A panel left without data is logged as a warning, and the exit status is 1 if any is.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

from bench.dashboards.draw import Drawn, PanelResult, render
from bench.dashboards.grafana import Dashboard, legend, load_dashboard, query_values, substitute, title_values
from bench.dashboards.incidents import (
    Incident,
    broker_outage,
    component_outage,
    postgres_ends_listeners,
)
from bench.dashboards.prometheus import Prometheus, running_prometheus
from bench.dashboards.recording import Recording, digest, load_recording
from bench.dashboards.traffic import Traffic
from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from shared.devstack import Stack, available_components, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.dashboards")

ROOT = Path(__file__).resolve().parents[2]
# The run's admin, seeded through the stack's settings; the password is new each run.
ADMIN = ("dashboards-admin@example.com", secrets.token_urlsafe(18))


class Sink:
    """An SMTP server that accepts every e-mail and keeps none."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def evaluate(
    prometheus: Prometheus, dashboard: Dashboard, window: tuple[float, float], args: argparse.Namespace
) -> list[PanelResult]:
    values = query_values(dashboard, args.rate_interval)
    results = []
    for panel in dashboard.panels:
        drawn: list[Drawn] = []
        error = ""
        for target in panel.targets:
            query = substitute(target.expr, values)
            try:
                series = prometheus.query_range(query, *window, step=args.step)
            except RuntimeError as exc:
                error = str(exc)
                log.error(f"{dashboard.uid} / {panel.title}: {exc}")
                continue
            named = sorted(
                (Drawn(name=legend(target.legend, s.labels), series=s) for s in series),
                key=lambda d: d.name,
            )
            drawn += named
        results.append(PanelResult(panel=panel, drawn=tuple(drawn), error=error))
    return results


def wait_for_scrape_after(prometheus: Prometheus, moment: float) -> None:
    """Until every target has a sample later than ``moment`` (the run's last requests are counted)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = time.time()
        series = prometheus.query_range("min(timestamp(up))", now - 1, now, step=1)
        if series and series[0].values and series[0].values[-1] > moment:
            return
        time.sleep(0.2)
    raise RuntimeError("Prometheus took no scrape after the run within 15 s")


def record(args: argparse.Namespace, dashboards: list[tuple[Path, Dashboard]]) -> Recording:
    """Start everything, drive the traffic, and evaluate every panel over the run."""
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="dashboards-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        smtp.start()
        cleanup.callback(smtp.stop)
        components = available_components()
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=components,
            ports={c.name: free_port() for c in components},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "ADMIN_EMAIL": ADMIN[0],
                "ADMIN_PASSWORD": ADMIN[1],
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                # The services see every request from the gateway's one address.
                "RATE_LIMIT_SCALE": "1000",
            },
            # The gateway sees each simulated person's own address and applies its real limits.
            component_env={"gateway": {"RATE_LIMIT_SCALE": "1", "GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}},
            log_dir=args.logs or workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info(f"preparing and starting {', '.join(c.name for c in components)} ...")
        stack.prepare()
        stack.start_all()
        targets = {c.name: f"127.0.0.1:{stack.port(c.name)}" for c in components}
        prometheus = cleanup.enter_context(running_prometheus(targets, workdir))

        incidents = [
            Incident(
                0.3, f"users stopped for {args.outage:.0f} s", component_outage(stack, "users", args.outage)
            ),
            Incident(0.65, "the broker refuses the run's connections for 8 s", broker_outage(amqp_url, 8)),
            Incident(
                0.8, "Postgres ends realtime's LISTEN connections", postgres_ends_listeners(database_url)
            ),
        ]
        traffic = Traffic(stack.url("gateway"), amqp_url, ADMIN, incidents, people=args.people)
        tally = asyncio.run(traffic.run(args.seconds))
        finished = time.time()
        log.info("requests by outcome: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items())))
        wait_for_scrape_after(prometheus, finished + 3)
        window = (traffic.load_started - 5, finished + 3)
        return Recording(
            start=window[0],
            end=window[1],
            seconds=args.seconds,
            rate_interval=args.rate_interval,
            dashboards={
                dashboard.uid: (digest(source), evaluate(prometheus, dashboard, window, args))
                for source, dashboard in dashboards
            },
        )


def draw(recording: Recording, dashboards: list[tuple[Path, Dashboard]], out: Path) -> list[str]:
    """Every dashboard as ``out/<uid>.png``; the panels left without data."""
    day = datetime.fromtimestamp(recording.start, UTC)
    empty: list[str] = []
    for _, dashboard in dashboards:
        source_digest, results = recording.dashboards[dashboard.uid]
        shown = "".join(f"; {v.label} = {v.text}" for v in dashboard.variables)
        header = (
            f"Drawn by `make dashboards` from a {recording.seconds:.0f} s bench run on {day:%Y-%m-%d} (time "
            f"UTC): Prometheus scraping every component each second, every panel's PromQL through "
            f"query_range, $__rate_interval = {recording.rate_interval}{shown}"
        )
        path = out / f"{dashboard.uid}.png"
        render(
            dashboard,
            results,
            header,
            title_values(dashboard),
            path,
            source_digest,
            (recording.start, recording.end),
        )
        missing = [r.panel.title for r in results if r.panel.type != "row" and not r.drawn]
        empty += [f"{dashboard.uid} / {title}" for title in missing]
        panels = sum(1 for r in results if r.panel.type != "row")
        log.info(f"{path}: {panels - len(missing)} of {panels} panels with data")
    return empty


def run(args: argparse.Namespace) -> int:
    sources = sorted(args.dashboards.glob("*.json"))
    if not sources:
        raise RuntimeError(f"no dashboards in {args.dashboards}")
    dashboards = [(source, load_dashboard(source)) for source in sources]
    if args.replay is not None:
        recording = load_recording(args.replay, dashboards)
    else:
        recording = record(args, dashboards)
        if args.save is not None:
            recording.save(args.save)
            log.info(f"the queries' answers are in {args.save} (--replay redraws from them)")
    empty = draw(recording, dashboards, args.out)
    for name in empty:
        log.warning(f"no data: {name}")
    return 1 if empty else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=80.0, help="how long the traffic runs")
    parser.add_argument("--people", type=int, default=24)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the users service is stopped")
    parser.add_argument("--rate-interval", default="15s", help="what $__rate_interval stands for")
    parser.add_argument("--step", type=float, default=1.0, help="query_range step, seconds")
    parser.add_argument("--dashboards", type=Path, default=ROOT / "deploy" / "grafana" / "dashboards")
    parser.add_argument("--out", type=Path, default=ROOT / "deploy" / "grafana" / "images")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--logs", type=Path, help="keep the components' logs in this folder")
    parser.add_argument("--save", type=Path, help="also write the queries' answers to this JSON file")
    parser.add_argument("--replay", type=Path, help="draw from a --save file instead of running anything")
    args = parser.parse_args()
    try:
        return run(args)
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        log.error(f"dashboards failed: {exc!r}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command
    sys.exit(main())
