"""What clients send to verify an address and reset a password."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from users.accounts.schemas import Email, Password

# Tokens are 43 URL-safe characters; a little room, and nothing that could cost the server much.
Token = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]


class VerifyEmailRequest(BaseModel):
    token: Token


class PasswordResetRequest(BaseModel):
    email: Email


class PasswordResetConfirm(BaseModel):
    token: Token
    new_password: Password


class Accepted(BaseModel):
    detail: str
