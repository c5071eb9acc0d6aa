"""The users service's ``/internal/users/{id}``: where contacts this service has not seen come from."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ValidationError

from shared.errors import UpstreamUnavailable
from shared.observability.request_id import current_request_id

log = logging.getLogger(__name__)


class _InternalUser(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool = True


class _InternalUsers(BaseModel):
    items: list[_InternalUser]


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    user_id: uuid.UUID
    email: str
    full_name: str
    is_active: bool


class UsersDirectory:
    def __init__(self, client: httpx.AsyncClient, base_url: str, service_token: str, timeout: float) -> None:
        self.client = client
        self.base_url = base_url
        self.service_token = service_token
        self.timeout = timeout

    async def lookup(self, user_id: uuid.UUID) -> DirectoryEntry | None:
        """The account, or None when the users service says it does not exist.

        Any other answer raises ``UpstreamUnavailable``: the event is retried later rather than
        handled without the address it needs.
        """
        headers = {"X-Service-Token": self.service_token}
        if request_id := current_request_id():
            headers["X-Request-ID"] = request_id
        url = f"{self.base_url}/internal/users/{user_id}"
        try:
            response = await self.client.get(url, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the users service cannot be reached: {type(exc).__name__}") from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise UpstreamUnavailable(f"the users service answered {response.status_code} for a user lookup")
        try:
            user = _InternalUser.model_validate_json(response.content)
        except ValidationError as exc:
            raise UpstreamUnavailable(
                "the users service answered a user lookup with an unexpected body"
            ) from exc
        return DirectoryEntry(user.id, user.email, user.full_name, user.is_active)

    async def admins(self) -> list[DirectoryEntry]:
        """Every active admin (``/internal/admins``); ``UpstreamUnavailable`` when users cannot say."""
        headers = {"X-Service-Token": self.service_token}
        try:
            response = await self.client.get(
                f"{self.base_url}/internal/admins", headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the users service cannot be reached: {type(exc).__name__}") from exc
        if response.status_code != httpx.codes.OK:
            raise UpstreamUnavailable(f"the users service answered {response.status_code} for the admins")
        try:
            admins = _InternalUsers.model_validate_json(response.content).items
        except ValidationError as exc:
            raise UpstreamUnavailable("the users service answered with an unexpected list of admins") from exc
        return [DirectoryEntry(a.id, a.email, a.full_name, a.is_active) for a in admins if a.is_active]
