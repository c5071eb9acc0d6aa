"""``/api/v1/auth/verify-email``, ``/verify-email/resend``, ``/password-reset`` and its ``/confirm``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from shared.service.dependencies import CurrentPrincipal, SessionDep
from shared.web.problems import PROBLEM_JSON
from users.accounts import service as accounts
from users.accounts.schemas import UserOut
from users.dependencies import PasswordsDep
from users.verification import service
from users.verification.schemas import (
    Accepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    VerifyEmailRequest,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

RESET_ACCEPTED = Accepted(
    detail="If an account uses this address, a link to reset its password is on its way (valid 30 minutes)."
)
# The reset request answers no sooner than this after it arrived, whether or not the address has an
# account (OWASP's forgot-password sheet): the work done for a known address (a token, an outbox row,
# its commit) takes far less, so both answers leave at the floor and their times do not tell them apart.
RESET_ANSWER_FLOOR = 0.25


async def _answer_floor() -> AsyncIterator[None]:
    # Declared before the session, so this runs after the commit: the floor covers the whole request.
    started = time.monotonic()
    yield
    await asyncio.sleep(max(0.0, RESET_ANSWER_FLOOR - (time.monotonic() - started)))


AnswerFloor = Annotated[None, Depends(_answer_floor, scope="function")]


@router.post(
    "/verify-email", response_model=UserOut, responses={400: {"description": "Used, expired or unknown"}}
)
async def verify_email(data: VerifyEmailRequest, session: SessionDep) -> UserOut:
    """Confirm the address with the token from the verification e-mail's link."""
    return UserOut.model_validate(await service.verify_email(session, data.token))


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={429: {"description": "One was sent less than a minute ago", "content": {PROBLEM_JSON: {}}}},
)
async def resend_verification(caller: CurrentPrincipal, session: SessionDep) -> Accepted:
    """Send the caller another verification e-mail (at most once a minute)."""
    user = await accounts.active_user(session, caller.user_id, for_update=True)
    await service.resend_verification(session, user)
    return Accepted(detail="A verification e-mail is on its way unless the address is verified already.")


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def request_password_reset(_: AnswerFloor, data: PasswordResetRequest, session: SessionDep) -> Accepted:
    """E-mail a reset link to the address if it has an account; the answer is the same either way."""
    await service.request_reset(session, data.email)
    return RESET_ACCEPTED


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={400: {"description": "Used, expired or unknown"}},
)
async def confirm_password_reset(
    data: PasswordResetConfirm, session: SessionDep, passwords: PasswordsDep
) -> Response:
    """Set a new password with the token from the reset e-mail; every session of the account ends."""
    await service.confirm_reset(session, passwords, data.token, data.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
