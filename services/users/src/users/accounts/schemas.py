"""What clients send and receive about accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.text import SingleLine


def _valid_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    # Stored as given; comparisons lower-case it (see the unique index on lower(email)).
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(_valid_email),
    Field(json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
    SingleLine,
]
Password = Annotated[str, Field(min_length=8, max_length=128, examples=["correct horse battery"]), SingleLine]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(examples=["Ada Lovelace"]),
    SingleLine,
]


class RegisterRequest(BaseModel):
    email: Email
    password: Password
    full_name: FullName


class UpdateMeRequest(BaseModel):
    full_name: FullName | None = None


class ChangePasswordRequest(BaseModel):
    # The current password is only compared, so its length is not policed beyond a sane bound.
    current_password: Annotated[str, Field(min_length=1, max_length=1024), SingleLine]
    new_password: Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    roles: list[str]
    is_active: bool
    email_verified: bool
    # /api/v1/users/{id}/avatar when the user has one.
    avatar_url: str | None
    created_at: datetime
