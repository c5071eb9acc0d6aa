"""The users service application: accounts, passwords, tokens and the JWKS."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.db.engine import ping
from shared.web.app import create_base_app
from users.accounts import router as accounts
from users.accounts.admin import ensure_admin
from users.internal import router as internal
from users.resources import open_resources
from users.settings import Settings
from users.tokens import router as tokens
from users.tokens.errors import install_oauth_error_handler

DESCRIPTION = "Accounts, argon2id passwords, the OAuth 2.0 token endpoint, rotating refresh tokens, JWKS."

TAGS = [
    {"name": "auth", "description": "Registration and OAuth 2.0 tokens"},
    {"name": "users", "description": "Accounts"},
    {"name": "keys", "description": "Public keys of the token issuer"},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, app.state.registry) as resources:
            app.state.resources = resources
            app.state.token_verifier = resources.verifier
            app.state.readiness["database"] = functools.partial(ping, resources.engine)
            app.state.readiness["broker"] = resources.broker.exchange
            if settings.admin_email and settings.admin_password:
                await ensure_admin(
                    resources.sessions,
                    resources.passwords,
                    settings.admin_email,
                    settings.admin_password.get_secret_value(),
                )
            relay = asyncio.create_task(resources.relay.run(), name="outbox-relay")
            try:
                yield
            finally:
                app.state.readiness.clear()
                # Let the relay finish the batch it holds; what is left stays in the outbox.
                resources.relay.stop()
                await asyncio.wait_for(relay, timeout=15)

    app = create_base_app(title="users", description=DESCRIPTION, lifespan=lifespan, openapi_tags=TAGS)
    install_oauth_error_handler(app)
    app.include_router(accounts.auth_router)
    app.include_router(tokens.router)
    app.include_router(accounts.router)
    app.include_router(internal.router)
    return app
