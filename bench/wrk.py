"""Running ``wrk --latency`` and reading its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int


def parse(output: str) -> WrkResult:
    """The figures from wrk's text report; raises ValueError when one is missing."""
    rps = _RPS.search(output)
    percentiles = {p: float(v) * _UNITS_MS[u] for p, v, u in _PERCENTILE.findall(output)}
    if rps is None or {"50", "99"} - percentiles.keys():
        raise ValueError(f"unexpected wrk output:\n{output}")
    failed = sum(int(n) for n in _NON_2XX.findall(output))
    errors = _ERRORS.search(output)
    if errors:
        failed += sum(int(n) for n in errors.groups())
    return WrkResult(float(rps.group(1)), percentiles["50"], percentiles["99"], failed)


def run_wrk(
    url: str,
    header: str,
    *,
    threads: int,
    connections: int,
    seconds: int,
    script: str | None = None,
    timeout: int | None = None,
) -> WrkResult:
    """``timeout``: seconds before wrk counts a request as failed (its default is 2)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", header]
    if timeout is not None:
        command += ["--timeout", f"{timeout}s"]
    if script is not None:
        command += ["-s", script]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    result = parse(done.stdout)
    if result.failed:
        # A bench that counts 401s or resets measures the wrong thing: refuse to report it.
        raise RuntimeError(f"{result.failed} requests to {url} failed or were not 2xx:\n{done.stdout}")
    return result
