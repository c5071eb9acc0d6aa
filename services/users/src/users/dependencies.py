"""What only users injects; the dependencies every service shares are in ``shared.service.dependencies``."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request

from shared.errors import TooManyRequests
from shared.service.dependencies import resources_of
from users.accounts.passwords import Passwords
from users.resources import Resources
from users.throttling.service import LoginThrottle
from users.tokens.service import TokenService

ResourcesDep = Annotated[Resources, Depends(resources_of(Resources))]


async def get_passwords(resources: ResourcesDep) -> Passwords:
    return resources.passwords


async def get_throttle(resources: ResourcesDep) -> LoginThrottle:
    return resources.throttle


async def get_tokens(resources: ResourcesDep) -> TokenService:
    return resources.tokens


async def get_client_ip(request: Request, resources: ResourcesDep) -> str:
    return resources.trusted_proxies.client_address_of(request.scope)


PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]
TokensDep = Annotated[TokenService, Depends(get_tokens)]
ClientIpDep = Annotated[str, Depends(get_client_ip)]


async def registration_allowed(ip: ClientIpDep, resources: ResourcesDep) -> None:
    """Sign-ups are cheap to send and costly to serve (an argon2 hash): each client gets a few a minute."""
    wait = resources.registrations.take(ip)
    if wait:
        raise TooManyRequests("Too many sign-ups from this client; try again later.", math.ceil(wait))


RegistrationLimit = Depends(registration_allowed)
