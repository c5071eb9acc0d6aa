"""What a run's queries returned, kept as JSON so the drawing can be redone without another run."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dashboards.draw import Drawn, PanelResult
from bench.dashboards.grafana import Dashboard
from bench.dashboards.prometheus import Series


def digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Recording:
    # The run's window (Unix seconds): every query covers it, and every panel's time axis shows it.
    start: float
    end: float
    seconds: float
    rate_interval: str
    # dashboard uid -> (digest of its JSON, per panel: (series as drawn, error))
    dashboards: dict[str, tuple[str, list[PanelResult]]]

    def save(self, path: Path) -> None:
        def number(value: float) -> float | str:
            return value if math.isfinite(value) else str(value)  # JSON has no NaN

        data = {
            "start": self.start,
            "end": self.end,
            "seconds": self.seconds,
            "rate_interval": self.rate_interval,
            "dashboards": {
                uid: {
                    "digest": source_digest,
                    "panels": [
                        {
                            "error": result.error,
                            "series": [
                                {
                                    "name": d.name,
                                    "labels": d.series.labels,
                                    "times": d.series.times,
                                    "values": [number(v) for v in d.series.values],
                                }
                                for d in result.drawn
                            ],
                        }
                        for result in results
                    ],
                }
                for uid, (source_digest, results) in self.dashboards.items()
            },
        }
        path.write_text(json.dumps(data))


def load_recording(path: Path, dashboards: list[tuple[Path, Dashboard]]) -> Recording:
    """The recording at ``path`` for ``dashboards``; refused if a dashboard changed since it was made."""
    data: dict[str, Any] = json.loads(path.read_text())
    kept: dict[str, tuple[str, list[PanelResult]]] = {}
    for source, dashboard in dashboards:
        entry = data["dashboards"].get(dashboard.uid)
        if entry is None or entry["digest"] != digest(source):
            raise RuntimeError(f"{source.name} changed since {path} was recorded: run without --replay")
        kept[dashboard.uid] = (
            entry["digest"],
            [
                PanelResult(
                    panel=panel,
                    error=str(stored["error"]),
                    drawn=tuple(
                        Drawn(
                            name=str(s["name"]),
                            series=Series(
                                labels=dict(s["labels"]),
                                times=tuple(float(t) for t in s["times"]),
                                values=tuple(float(v) for v in s["values"]),
                            ),
                        )
                        for s in stored["series"]
                    ),
                )
                for panel, stored in zip(dashboard.panels, entry["panels"], strict=True)
            ],
        )
    return Recording(
        start=float(data["start"]),
        end=float(data["end"]),
        seconds=float(data["seconds"]),
        rate_interval=str(data["rate_interval"]),
        dashboards=kept,
    )
