"""The unit of work: owns one transaction; services flush, this commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

AfterCommit = Callable[[], Awaitable[Any]]


class UnitOfWork:
    """Owns one transaction: services flush, this commits; after-commit work runs only if it did.

    ``before_commit`` hooks write, inside the transaction, what was collected during it (many rows as
    one statement, say); ``state`` is where a collector keeps itself for the transaction's length.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.state: dict[str, Any] = {}
        self._before_commit: list[AfterCommit] = []
        self._after_commit: list[AfterCommit] = []

    def before_commit(self, hook: AfterCommit) -> None:
        self._before_commit.append(hook)

    def after_commit(self, hook: AfterCommit) -> None:
        self._after_commit.append(hook)

    @property
    def has_work(self) -> bool:
        return self.session.in_transaction() or bool(self._before_commit)

    async def commit(self) -> None:
        while self._before_commit:  # a hook may register another
            hook = self._before_commit.pop(0)
            await hook()
        self.state.clear()
        await self.session.commit()
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            await hook()

    async def rollback(self) -> None:
        self._before_commit.clear()
        self._after_commit.clear()
        self.state.clear()
        await self.session.rollback()


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[UnitOfWork]:
    """Commit when the block ends normally, roll back when it raises."""
    async with sessionmaker() as session:
        uow = UnitOfWork(session)
        try:
            yield uow
        except BaseException:
            await uow.rollback()
            raise
        else:
            if uow.has_work:
                await uow.commit()
