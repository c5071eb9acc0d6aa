"""Seeding of the operator's admin account from ADMIN_EMAIL / ADMIN_PASSWORD."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.unit_of_work import unit_of_work
from users.accounts.models import ROLE_ADMIN, ROLE_USER, User
from users.accounts.passwords import Passwords
from users.accounts.repository import UserRepository
from users.verification.service import password_changed

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same on every replica.
SEED_LOCK = 0x75736572_61646D6E  # "useradmn"


async def ensure_admin(
    sessions: async_sessionmaker[AsyncSession],
    passwords: Passwords,
    email: str,
    password: str,
    *,
    promote_existing: bool = False,
) -> None:
    """Make the admin exist, be active, have both roles and accept ``password``; safe to repeat.

    An account that already uses ``email`` without being an admin may belong to anyone who signed up
    with that address first, so it is promoted only when the operator says so (``promote_existing``);
    its sessions are then ended, or whoever registered it would stay signed in as the admin.
    ``email`` was validated with the settings.
    """
    async with unit_of_work(sessions) as uow:
        # Replicas starting together take turns, so exactly one of them inserts.
        await uow.session.execute(select(func.pg_advisory_xact_lock(SEED_LOCK)))
        repo = UserRepository(uow.session)
        user = await repo.get_by_email(email, for_update=True)
        if user is None:
            await repo.add(
                User(
                    id=uuid.uuid4(),
                    email=email,
                    password_hash=await passwords.hash(password),
                    full_name="Administrator",
                    roles=[ROLE_USER, ROLE_ADMIN],
                    is_active=True,
                )
            )
            log.info("admin account created", extra={"email": email})
            return
        changed = []
        if not user.is_admin:
            if not promote_existing:
                log.warning(
                    "ADMIN_EMAIL belongs to an account that is not an admin; it is left as it is"
                    " (set ADMIN_PROMOTE_EXISTING=true to make it the admin)",
                    extra={"email": email, "user_id": str(user.id)},
                )
                return
            changed.append("promoted")
        if not user.is_admin or ROLE_USER not in user.roles:
            user.grant_admin()
            changed.append("roles")
        if not user.is_active:
            user.is_active = True
            changed.append("is_active")
        verification = await passwords.verify(user.password_hash, password)
        if "promoted" in changed or not verification.ok:
            user.password_hash = await passwords.hash(password)
            changed.append("password")
        elif verification.new_hash:
            user.password_hash = verification.new_hash
        if "password" in changed:
            # Whoever held the account before the password was replaced must not keep a session, nor
            # a reset link that would let them choose the admin's password again.
            await password_changed(uow.session, user.id)
        if changed:
            await repo.flush(user)
            level = logging.WARNING if "promoted" in changed else logging.INFO
            log.log(level, "admin account updated", extra={"email": email, "changed": changed})
