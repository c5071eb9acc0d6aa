"""argon2id hashing, rehashing and the constant-cost answer for unknown accounts (no database)."""

from __future__ import annotations

import time

import pytest
from argon2 import PasswordHasher, profiles

from users.accounts.passwords import Passwords, Verification


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
