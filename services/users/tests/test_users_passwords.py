"""argon2id hashing, rehashing and the constant-cost answer for unknown accounts (no database)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from argon2 import PasswordHasher, profiles

from users.accounts.passwords import Passwords, Verification, concurrent_hashes


@pytest.fixture
async def passwords() -> Passwords:
    return await Passwords.create("CHEAPEST")


async def test_hash_is_argon2id_and_verifies(passwords: Passwords) -> None:
    stored = await passwords.hash("s3cret password")
    assert stored.startswith("$argon2id$")
    assert (await passwords.verify(stored, "s3cret password")).ok
    assert not (await passwords.verify(stored, "S3cret password")).ok


async def test_garbage_hash_is_a_mismatch_not_a_crash(passwords: Passwords) -> None:
    assert not (await passwords.verify("not-a-hash", "whatever")).ok


async def test_weaker_hash_is_upgraded_on_successful_verify() -> None:
    weak = PasswordHasher.from_parameters(profiles.CHEAPEST).hash("upgrade me")
    stronger = await Passwords.create("RFC_9106_LOW_MEMORY")
    verification = await stronger.verify(weak, "upgrade me")
    assert verification.ok
    assert verification.new_hash is not None
    assert (await stronger.verify(verification.new_hash, "upgrade me")) == Verification(ok=True)
    assert (await stronger.verify(weak, "wrong")).new_hash is None


async def test_unknown_account_costs_a_real_verification() -> None:
    passwords = await Passwords.create("RFC_9106_LOW_MEMORY")
    stored = await passwords.hash("real password")

    async def timed(coro: object) -> float:
        start = time.perf_counter()
        await coro  # type: ignore[misc]
        return time.perf_counter() - start

    real = min([await timed(passwords.verify(stored, "wrong guess")) for _ in range(3)])
    nobody = min([await timed(passwords.verify_nobody("wrong guess")) for _ in range(3)])
    # Same parameters, same work: within a generous factor on a noisy machine.
    assert nobody > real / 3


def test_the_pool_is_sized_by_the_memory_budget() -> None:
    assert concurrent_hashes("RFC_9106_LOW_MEMORY", 256, cores=8) == 4  # 64 MiB each
    assert concurrent_hashes("RFC_9106_LOW_MEMORY", 256, cores=2) == 2  # no more than the cores
    assert concurrent_hashes("RFC_9106_LOW_MEMORY", 100, cores=8) == 1
    assert concurrent_hashes("RFC_9106_LOW_MEMORY", 10, cores=8) == 1  # never none
    assert concurrent_hashes("RFC_9106_HIGH_MEMORY", 4096, cores=8) == 2  # 2 GiB each


class GatedHasher:
    """Stands in for argon2: each call holds a thread until the test opens the gate, and is counted."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.changed = threading.Condition()
        self.running = self.most = 0

    def _hold(self) -> None:
        with self.changed:
            self.running += 1
            self.most = max(self.most, self.running)
            self.changed.notify_all()
        self.gate.wait(timeout=30)
        with self.changed:
            self.running -= 1

    def wait_running(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.running >= count, timeout=30)

    def hash(self, password: str) -> str:
        self._hold()
        return "hashed"

    def verify(self, stored: str, password: str) -> bool:
        return True

    def check_needs_rehash(self, stored: str) -> bool:
        return False


async def test_a_flood_of_hashes_stays_within_the_pool_and_leaves_a_thread_for_logins() -> None:
    hasher = GatedHasher()
    passwords = Passwords(hasher, "dummy", threads=4)  # type: ignore[arg-type]
    try:
        flood = [asyncio.create_task(passwords.hash(f"password {n}")) for n in range(60)]
        assert await asyncio.to_thread(hasher.wait_running, 3)
        # A login is served while sixty sign-ups wait (they hold 3 of the 4 threads).
        assert (await asyncio.wait_for(passwords.verify("stored", "password"), timeout=30)).ok
        hasher.gate.set()
        assert await asyncio.gather(*flood) == ["hashed"] * 60
        assert hasher.most == 3
    finally:
        hasher.gate.set()
        passwords.close()
