"""Login throttling per account and per client IP, shared by every replica through Postgres.

An attempt is first recorded as a failure and committed, and only then counted: of N concurrent
guesses at most ``limit`` get to the password check, whatever the replica. A successful attempt
erases the account's failures (its own reservation included); a refused one erases its reservation,
so knocking on a locked door does not keep it locked longer.

The per-address limit never refuses the password check of an account that has not failed itself:
behind an ingress every client may share one address, and guesses at made-up e-mails must not lock
everyone out. Over that limit, such an account's wrong passwords are answered with 429 (and still
counted against the account), its right one signs in; accounts with failures of their own wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.unit_of_work import unit_of_work
from shared.errors import TooManyRequests
from users.accounts.models import email_key
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
    # Seconds until the client's address is below its limit, when it is over it now.
    address_wait: int | None = None


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
        key = email_key(account)
        longest = max(self._policy.account_window, self._policy.ip_window)
        now = self.clock()
        async with unit_of_work(self._sessions) as uow:
            repo = LoginFailureRepository(uow.session)
            await repo.purge_older_than(longest, now)
            attempt = Attempt(id=await repo.add(key, ip, now), account_key=key, ip=ip)
        # A second transaction, so this count sees every reservation committed before ours.
        async with unit_of_work(self._sessions) as uow:
            repo = LoginFailureRepository(uow.session)
            blocked = await repo.seconds_until_below(
                column="account_key",
                key=key,
                limit=self._policy.max_per_account,
                window=self._policy.account_window,
                excluding=attempt.id,
                now=now,
            )
            address_wait = await repo.seconds_until_below(
                column="ip",
                key=ip,
                limit=self._policy.max_per_ip,
                window=self._policy.ip_window,
                excluding=attempt.id,
                now=now,
            )
            if blocked is None and address_wait is not None:
                failed_before = await repo.seconds_until_below(
                    column="account_key",
                    key=key,
                    limit=1,
                    window=self._policy.account_window,
                    excluding=attempt.id,
                    now=now,
                )
                if failed_before is not None:
                    blocked = address_wait
            if blocked is not None:
                await repo.delete(attempt.id)
        if blocked is not None:
            raise _too_many(blocked)
        return Attempt(attempt.id, key, ip, address_wait)

    def failed(self, attempt: Attempt) -> None:
        """The password was wrong: raise ``TooManyRequests`` when the address is over its limit."""
        if attempt.address_wait is not None:
            raise _too_many(attempt.address_wait)

    async def succeeded(self, attempt: Attempt) -> None:
        async with unit_of_work(self._sessions) as uow:
            await LoginFailureRepository(uow.session).clear_account(attempt.account_key)


def _too_many(retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        f"Too many failed login attempts; try again in {retry_after} seconds.", retry_after
    )
