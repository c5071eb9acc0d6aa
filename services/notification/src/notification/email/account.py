"""The account e-mails (address verification, password reset), rendered with Jinja2: an HTML part
with autoescaping and a plain-text part, the link built from ``PUBLIC_URL``."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import jinja2

from notification.email.templates import WELCOME, RenderedEmail
from shared.messaging.events import AccountEmailRequestedData

VERIFY_EMAIL, PASSWORD_RESET = "verify_email", "password_reset"
# Where the console serves each link (gateway/src/gateway/console).
PAGES = {VERIFY_EMAIL: "/console/verify", PASSWORD_RESET: "/console/reset"}
SUBJECTS = {VERIFY_EMAIL: "Confirm your e-mail address", PASSWORD_RESET: "Reset your password"}


@functools.cache
def _environment() -> jinja2.Environment:
    # Built on first use, not at import; autoescaping for the HTML parts only.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("account_templates")),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def link(public_url: str, kind: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{PAGES[kind]}?{urlencode({'token': token})}"


def _valid_for(expires_at: datetime, now: datetime) -> str:
    minutes = max(1, round((expires_at - now).total_seconds() / 60))
    return f"{minutes // 60} hours" if minutes >= 120 else f"{minutes} minutes"


def render(request: AccountEmailRequestedData, *, public_url: str, now: datetime) -> RenderedEmail:
    values = {
        "name": request.full_name,
        "email": request.email,
        "welcome": request.welcome,
        "link": link(public_url, request.kind, request.token),
        "valid_for": _valid_for(request.expires_at, now),
    }
    env = _environment()
    welcome = request.kind == VERIFY_EMAIL and request.welcome
    return RenderedEmail(
        template=WELCOME if welcome else request.kind,
        subject="Welcome aboard" if welcome else SUBJECTS[request.kind],
        text=env.get_template(f"{request.kind}.txt.j2").render(values),
        html=env.get_template(f"{request.kind}.html.j2").render(values),
    )
