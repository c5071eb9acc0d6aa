"""Debian's Prometheus scraping a stack every second, and its ``query_range`` answers as series."""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.processes import free_port, stop_process

log = logging.getLogger("bench.dashboards.prometheus")

SCRAPE_INTERVAL = "1s"


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]


def scrape_config(targets: Mapping[str, str]) -> dict[str, Any]:
    """One scrape job per component, named after it, as deploy/prometheus/prometheus.yml names them."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }


class Prometheus:
    def __init__(self, url: str) -> None:
        self.api = url + "/api/v1"

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        response = httpx.get(self.api + path, params=params, timeout=30)
        try:
            body = response.json()
        except ValueError:  # not JSON: still starting ("Service Unavailable"), or not Prometheus at all
            raise RuntimeError(
                f"Prometheus answered {response.status_code}: {response.text[:200]!r}"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {params.get('query', path)!r}: {body.get('error')}")
        return body["data"]

    def target_health(self) -> dict[str, str]:
        data = self._get("/targets", {})
        return {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get(
            "/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        if data["resultType"] != "matrix":
            raise RuntimeError(f"{query!r} gave a {data['resultType']}, not a range of samples")
        return [
            Series(
                labels=dict(item["metric"]),
                times=tuple(float(t) for t, _ in item["values"]),
                # Prometheus writes NaN, +Inf and -Inf as strings; float() reads all three.
                values=tuple(float(v) for _, v in item["values"]),
            )
            for item in data["result"]
        ]


def wait_until_up(prometheus: Prometheus, jobs: set[str], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}")
        try:
            health = prometheus.target_health()
        except (httpx.HTTPError, RuntimeError):
            health = {}  # Prometheus itself not answering yet: asked again, and named at the deadline
        if health == dict.fromkeys(jobs, "up"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"Prometheus did not see every component up within 30 s: {health}")


@contextmanager
def running_prometheus(targets: Mapping[str, str], workdir: Path) -> Iterator[Prometheus]:
    """Prometheus on a free port with its data in ``workdir``; every target up when this yields."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).is_file():
        raise RuntimeError(
            "Debian's prometheus is needed: make apt-bench installs it (apt-get install prometheus)"
        )
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets)))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
        start_new_session=True,
    )
    try:
        prometheus = Prometheus(f"http://127.0.0.1:{port}")
        wait_until_up(prometheus, set(targets), process)
        log.info(f"Prometheus on :{port} scrapes {', '.join(targets)} every {SCRAPE_INTERVAL}")
        yield prometheus
    finally:
        stop_process(process, grace=15)


def finite(values: tuple[float, ...]) -> list[float]:
    return [v for v in values if math.isfinite(v)]
