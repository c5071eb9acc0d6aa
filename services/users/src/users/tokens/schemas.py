"""The token endpoint's answer, and its form fields documented by hand (it parses the form itself)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the RFC 6750 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


# The token endpoint refuses control characters in every parameter (invalid_request).
_TEXT = {"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    properties = {name: {**_TEXT, **field} for name, field in properties.items()}
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


TOKEN_FORM = _form(
    {
        "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
        "username": {"type": "string", "description": "E-mail (password grant)"},
        "password": {"type": "string", "format": "password", "description": "Password (password grant)"},
        "refresh_token": {"type": "string", "description": "Refresh token (refresh_token grant)"},
        "scope": {"type": "string", "description": "Ignored"},
    },
    ["grant_type"],
)

REVOKE_FORM = _form(
    {
        "token": {"type": "string", "minLength": 1, "description": "A refresh token"},
        "token_type_hint": {"type": "string", "description": "Ignored: only refresh tokens are revoked"},
    },
    ["token"],
)
