"""The ``Annotated`` dependencies every service's routers share, defined once.

What they read, a service's lifespan puts on ``app.state``: ``resources`` (its ``Resources``, which hold
the ``sessions`` sessionmaker) and ``token_verifier``. A service's own ``dependencies.py`` adds only what
is its own (its ``Resources`` type, its clients, its headers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth.verifier import Principal, TokenVerifier, bearer_token
from shared.db.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, PageParams
from shared.db.unit_of_work import UnitOfWork, unit_of_work
from shared.errors import Forbidden, Unauthorized

R = TypeVar("R")


class HasSessions(Protocol):
    """What the request's transaction needs from a service's resources."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...


def resources_of(kind: type[R]) -> Callable[[Request], Awaitable[R]]:
    """A dependency answering ``app.state.resources``, typed as the service's own ``Resources``."""

    async def get_resources(request: Request) -> R:
        resources = request.app.state.resources
        if not isinstance(resources, kind):
            raise TypeError(f"app.state.resources is not a {kind.__qualname__}")
        return resources

    return get_resources


async def get_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One transaction per request: committed when the endpoint returns, rolled back if it raises."""
    resources: HasSessions = request.app.state.resources
    async with unit_of_work(resources.sessions) as uow:
        yield uow


# scope="function": the commit happens before the response is sent, never after.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


async def get_session(uow: UnitOfWorkDep) -> AsyncSession:
    return uow.session


# The request's unit of work's session (one per request, however many dependencies ask for it).
SessionDep = Annotated[AsyncSession, Depends(get_session)]

# Declared for the OpenAPI document (the "Authorize" button), the same in every service so the
# gateway's merged document has one way to log in; ``current_principal`` does the actual check.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _verifier_of(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise TypeError("app.state.token_verifier is not configured")
    return verifier


async def current_principal(request: Request, _: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    """The verified caller, or 401 with ``WWW-Authenticate: Bearer``."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("An access token is required.", error=None)
    return await _verifier_of(request).verify(token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    """The verified caller when an admin; 403 otherwise."""
    if not principal.is_admin:
        raise Forbidden("This action needs the admin role.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="From a previous next_cursor")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=Cursor.decode(cursor) if cursor else None)


PageParamsDep = Annotated[PageParams, Depends(page_params)]
