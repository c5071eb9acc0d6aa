"""Cron expressions: five fields, UTC, parsed and evaluated by cronsim.

cronsim (the parser Healthchecks runs on) matches Debian's cron and has no dependencies. It also
accepts a sixth (seconds) field since 2.9; the contract's schedules have five, so more are refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

# Printable ASCII only: an expression never needs more, and a control character is refused (422).
_PRINTABLE = re.compile(r"[\x20-\x7e]{1,200}")
# The longest gap is taken over this many upcoming due times ("0 8 * * 1-5" has a 3-day gap weekly).
_GAPS_SAMPLED = 16


class InvalidSchedule(ValueError):
    """The text is not a five-field cron expression that ever comes due."""


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str

    @classmethod
    def parse(cls, text: str) -> Schedule:
        if not _PRINTABLE.fullmatch(text):
            raise InvalidSchedule("a cron expression is 1-200 printable ASCII characters")
        fields = text.split()
        if len(fields) != 5:
            raise InvalidSchedule("a cron expression has five fields: minute hour day month weekday")
        schedule = cls(" ".join(fields))
        try:
            schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise InvalidSchedule(str(exc)) from exc
        except StopIteration as exc:
            # Parsed, but never due ("0 0 31 2 *"): a job that would silently never run.
            raise InvalidSchedule("the expression never comes due") from exc
        return schedule

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (UTC)."""
        return next(CronSim(self.expression, moment.astimezone(UTC)))

    def interval_seconds(self, moment: datetime) -> float:
        """The longest gap between consecutive due times after ``moment``: what an alert allows for."""
        times = CronSim(self.expression, moment.astimezone(UTC))
        previous = next(times)
        longest = 0.0
        for _ in range(_GAPS_SAMPLED):
            current = next(times)
            longest = max(longest, (current - previous).total_seconds())
            previous = current
        return longest
