"""FastAPI dependencies that name the caller from the verified access token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from shared.auth.verifier import Principal, TokenVerifier, bearer_token
from shared.errors import Forbidden, Unauthorized

VerifierGetter = Callable[[Request], TokenVerifier]


def _verifier_of(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise TypeError("app.state.token_verifier is not configured")
    return verifier


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, or 401 with ``WWW-Authenticate: Bearer``."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("An access token is required.", error=None)
    return await _verifier_of(request).verify(token)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This action needs the admin role.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
