"""CPU accounting from ``/proc`` (Linux): what a process spent, how long a thread waited for a core.

On a shared two-core machine a latency figure means little without these: they tell whether the
servers, the bench's own client, or other work on the machine had the cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICK


def run_queue_wait() -> float:
    """Seconds the calling process's main thread has spent runnable but waiting for a core."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        # A kernel without scheduler statistics: no wait is known, and the tables say 0%.
        return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from the first line of ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuWindow:
    """Cores each named process used, and how busy the whole machine was, between two samples."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._start = self._sample()
        self.started = self._start[2]

    def _sample(self) -> tuple[dict[str, float], tuple[float, float], float]:
        wall = time.monotonic()
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}, machine_busy(), wall

    def cores(self) -> tuple[dict[str, float], float]:
        """Per process, cores used on average (1.0 = one core all along); and the machine's busy share."""
        (before, (busy0, total0), wall0), (after, (busy1, total1), wall1) = self._start, self._sample()
        elapsed = max(1e-9, wall1 - wall0)
        used = {name: (after[name] - before[name]) / elapsed for name in self.pids}
        return used, (busy1 - busy0) / max(1.0, total1 - total0)
