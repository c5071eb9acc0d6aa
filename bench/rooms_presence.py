"""Presence after a replica dies without a goodbye: how long until the room stops counting its members.

With members on both replicas, replica two gets SIGKILL (no goodbye, no leave frames of its own). The
bench then polls ``GET /api/v1/rooms/{id}/presence`` through the gateway (replica one) until no user
whose connections were all on replica two is listed, and collects the ``presence`` frames the members
on replica one receive: each of them should get one ``leave`` per such user, and none for a user who
still has a connection on replica one. Both times are from the kill; the contract's bound is 30 s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from bench.rooms_steps import Load

TARGET_S = 30.0


def user_id(token: str) -> str:
    """The ``sub`` of an access token the bench itself obtained (read, not verified)."""
    sub: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return sub


@dataclass
class Convergence:
    users_before: int
    users_expected: int
    dead_users: int
    survivors: int  # member sockets on replica one
    presence_s: float = math.nan
    leaves: int = 0
    last_leave_s: float = math.nan
    wrong_leaves: int = 0
    counts_agree: bool = False

    def table(self) -> list[str]:
        expected = self.survivors * self.dead_users
        return [
            f"presence after SIGKILL of replica two: {self.dead_users} users whose connections were all "
            f"on it, {self.survivors} member sockets left on replica one",
            "",
            "| figure | value | target |",
            "|---|---:|---:|",
            f"| users in GET presence before the kill | {self.users_before} / {self.users_expected} "
            "| equal |",
            f"| s until GET presence (via gateway) dropped them | {self.presence_s:.1f} | < {TARGET_S:.0f} |",
            f"| leave frames at replica one's members | {self.leaves} / {expected} | equal |",
            f"| s until the last leave frame arrived | {self.last_leave_s:.1f} | < {TARGET_S:.0f} |",
            f"| leave frames for users still connected | {self.wrong_leaves} | 0 |",
            f"| survivors' connection counts match their sockets | {'yes' if self.counts_agree else 'no'} "
            "| yes |",
        ]


async def _present(load: Load) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {load.tokens[0]}"}
    response = await load.client.get(f"/api/v1/rooms/{load.room}/presence", headers=headers)
    response.raise_for_status()
    return {u["user_id"]: u["connections"] for u in response.json()["users"]}


async def converge_after_kill(
    load: Load, replica_of: list[tuple[str, int]], kill: Callable[[], object], timeout: float = 60.0
) -> Convergence:
    """``replica_of`` is each member socket's (user id, replica 1 or 2); ``kill`` SIGKILLs replica two."""
    on_one = Counter(user for user, replica in replica_of if replica == 1)
    everyone = {user for user, _ in replica_of}
    dead = everyone - set(on_one)
    result = Convergence(
        users_before=len(await _present(load)),
        users_expected=len(everyone),
        dead_users=len(dead),
        survivors=sum(on_one.values()),
    )
    await load.take()  # the join frames of the setup are not counted
    killed_ns = time.monotonic_ns()
    kill()
    deadline = time.monotonic() + timeout
    present = await _present(load)
    while set(present) & dead and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        present = await _present(load)
    if not set(present) & dead:
        result.presence_s = (time.monotonic_ns() - killed_ns) / 1e9
    result.counts_agree = present == dict(on_one)
    last_ns = 0
    while time.monotonic() < deadline:
        batch = await load.take()
        for action, user, arrived in batch.presence:
            if action != "leave":
                continue
            if user in dead:
                result.leaves += 1
                last_ns = max(last_ns, arrived)
            else:
                result.wrong_leaves += 1
        if result.leaves >= result.survivors * result.dead_users:
            break
        await asyncio.sleep(0.25)
    if last_ns:
        result.last_leave_s = (last_ns - killed_ns) / 1e9
    return result
