"""Login throttling per account and per client IP, shared by every replica through Postgres.

An attempt is first recorded as a failure and committed, and only then counted: of N concurrent
guesses at most ``limit`` get to the password check, whatever the replica. A successful attempt
erases the account's failures (its own reservation included); a refused one erases its reservation,
so knocking on a locked door does not keep it locked longer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.unit_of_work import unit_of_work
from shared.errors import TooManyRequests
from users.throttling.repository import LoginFailureRepository


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_per_account: int = 5
    account_window: timedelta = timedelta(minutes=15)
    max_per_ip: int = 50
    ip_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reservation: counted as a failure unless ``succeeded`` is called."""

    id: int
    account_key: str
    ip: str


def wall_clock() -> datetime:
    return datetime.now(UTC)


class LoginThrottle:
    """``clock``: the time failures are recorded and counted at (the replicas' clocks agree through NTP;
    tests pass one they move)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: ThrottlePolicy,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self.clock = clock

    async def begin(self, account: str, ip: str) -> Attempt:
        """Reserve an attempt, or raise ``TooManyRequests`` (with Retry-After) when over a limit."""
        key = account.strip().lower()
        longest = max(self._policy.account_window, self._policy.ip_window)
        now = self.clock()
        async with unit_of_work(self._sessions) as uow:
            repo = LoginFailureRepository(uow.session)
            await repo.purge_older_than(longest, now)
            attempt = Attempt(id=await repo.add(key, ip, now), account_key=key, ip=ip)
        # A second transaction, so this count sees every reservation committed before ours.
        async with unit_of_work(self._sessions) as uow:
            repo = LoginFailureRepository(uow.session)
            waits = [
                await repo.seconds_until_below(
                    column="account_key",
                    key=key,
                    limit=self._policy.max_per_account,
                    window=self._policy.account_window,
                    excluding=attempt.id,
                    now=now,
                ),
                await repo.seconds_until_below(
                    column="ip",
                    key=ip,
                    limit=self._policy.max_per_ip,
                    window=self._policy.ip_window,
                    excluding=attempt.id,
                    now=now,
                ),
            ]
            blocked = [wait for wait in waits if wait is not None]
            if blocked:
                await repo.delete(attempt.id)
        if blocked:
            retry_after = max(blocked)
            raise TooManyRequests(
                f"Too many failed login attempts; try again in {retry_after} seconds.", retry_after
            )
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        async with unit_of_work(self._sessions) as uow:
            await LoginFailureRepository(uow.session).clear_account(attempt.account_key)
