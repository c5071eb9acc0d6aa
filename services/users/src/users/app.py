"""The users service application: accounts, passwords, tokens and the JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.jobs.router import jobs_router
from shared.web.app import create_base_app, serving
from users import jobs
from users.accounts import router as accounts
from users.avatars import router as avatars
from users.deletion import router as deletion
from users.internal import router as internal
from users.resources import Metrics, open_resources
from users.settings import Settings
from users.tokens import router as tokens
from users.tokens.errors import install_oauth_error_handler
from users.verification import router as verification
from users.workers import declare_workers

DESCRIPTION = "Accounts, argon2id passwords, the OAuth 2.0 token endpoint, rotating refresh tokens, JWKS."

TAGS = [
    {"name": "auth", "description": "Registration and OAuth 2.0 tokens"},
    {"name": "users", "description": "Accounts"},
    {"name": "keys", "description": "Public keys of the token issuer"},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_resources(settings, metrics) as resources,
            serving(app, resources, declare_workers(resources, metrics)),
        ):
            yield

    app = create_base_app(
        title="users", description=DESCRIPTION, lifespan=lifespan, registry=registry, openapi_tags=TAGS
    )
    install_oauth_error_handler(app)
    app.include_router(accounts.auth_router)
    app.include_router(verification.router)
    app.include_router(tokens.router)
    app.include_router(accounts.router)
    app.include_router(deletion.router)
    app.include_router(avatars.router)
    app.include_router(internal.router)
    app.include_router(jobs_router(jobs.SERVICE))
    return app
