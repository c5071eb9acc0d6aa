"""argon2id hashing on a bounded pool of worker threads, so a login never stalls the event loop and a
flood of sign-ups cannot take more memory than the budget the operator gave it.

Each hash or verification holds the profile's ``memory_cost`` (64 MiB for RFC_9106_LOW_MEMORY) while
it runs: the pool has ``budget / memory_cost`` threads (at most one per core), and more work waits. New hashes
(sign-ups, password changes) may take all but one of them, so a login always finds a free thread
however many anonymous sign-ups are queued.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from users.settings import Argon2Profile

T = TypeVar("T")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # A fresh hash when the stored one used weaker parameters than today's; store it.
    new_hash: str | None = None


def concurrent_hashes(profile: Argon2Profile, memory_budget_mib: int, cores: int | None = None) -> int:
    """How many argon2 computations run at once: as many as fit in ``memory_budget_mib``, and no more
    than there are cores (argon2 is CPU-bound: more threads only slow each one down), at least one."""
    parameters: Parameters = getattr(profiles, profile)
    per_hash_mib = parameters.memory_cost / 1024
    return max(1, min(cores or _cores(), int(memory_budget_mib // per_hash_mib)))


class Passwords:
    """Hash and verify with one argon2id profile; unknown accounts cost the same as known ones."""

    def __init__(self, hasher: PasswordHasher, dummy_hash: str, threads: int) -> None:
        self._hasher = hasher
        self._dummy_hash = dummy_hash
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        # New hashes leave one thread to verifications (logins), when there is more than one.
        self._hash_slots = asyncio.Semaphore(max(1, threads - 1))

    @classmethod
    async def create(cls, profile: Argon2Profile, memory_budget_mib: int = 256) -> Passwords:
        hasher = PasswordHasher.from_parameters(getattr(profiles, profile))
        # A hash of a random secret with the live parameters: verifying against it takes as long
        # as a real verification and never succeeds, so response time does not reveal unknown e-mails.
        dummy = await asyncio.to_thread(hasher.hash, secrets.token_urlsafe(32))
        return cls(hasher, dummy, concurrent_hashes(profile, memory_budget_mib))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def hash(self, password: str) -> str:
        async with self._hash_slots:
            return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> Verification:
        return await self._run(self._verify, stored_hash, password)

    async def verify_nobody(self, password: str) -> None:
        """Spend the time of a real verification for an account that does not exist."""
        await self._run(self._verify, self._dummy_hash, password)

    def _verify(self, stored_hash: str, password: str) -> Verification:
        try:
            self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verification(ok=True, new_hash=self._hasher.hash(password))
        return Verification(ok=True)
