"""argon2id hashing, run in worker threads so a login never stalls the event loop."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from users.settings import Argon2Profile


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # A fresh hash when the stored one used weaker parameters than today's; store it.
    new_hash: str | None = None


class Passwords:
    """Hash and verify with one argon2id profile; unknown accounts cost the same as known ones."""

    def __init__(self, hasher: PasswordHasher, dummy_hash: str) -> None:
        self._hasher = hasher
        self._dummy_hash = dummy_hash

    @classmethod
    async def create(cls, profile: Argon2Profile) -> Passwords:
        hasher = PasswordHasher.from_parameters(getattr(profiles, profile))
        # A hash of a random secret with the live parameters: verifying against it takes as long
        # as a real verification and never succeeds, so response time does not reveal unknown e-mails.
        dummy = await asyncio.to_thread(hasher.hash, secrets.token_urlsafe(32))
        return cls(hasher, dummy)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> Verification:
        return await asyncio.to_thread(self._verify, stored_hash, password)

    async def verify_nobody(self, password: str) -> None:
        """Spend the time of a real verification for an account that does not exist."""
        await asyncio.to_thread(self._verify, self._dummy_hash, password)

    def _verify(self, stored_hash: str, password: str) -> Verification:
        try:
            self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verification(ok=True, new_hash=self._hasher.hash(password))
        return Verification(ok=True)
