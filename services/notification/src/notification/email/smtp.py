"""SMTP delivery with aiosmtplib, and which failures are worth another attempt."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from notification.email.repository import ClaimedEmail
from notification.settings import Settings


class PermanentFailure(Exception):
    """The server refused this message for good (5xx on recipient or content): retrying cannot help."""


def build_message(email: ClaimedEmail, mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    # Stable per e-mail row: if a crash makes us send it twice, mail systems can tell it is one message.
    message["Message-ID"] = f"<{email.id}@notification.invalid>"
    message.set_content(email.text_body)
    if email.html_body:
        message.add_alternative(email.html_body, subtype="html")
    return message


def _is_permanent(exc: aiosmtplib.SMTPException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return exc.code >= 500
    # Connection, greeting, authentication and 4xx failures: the server or our configuration may recover.
    return False


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.hostname = settings.smtp_host
        self.port = settings.smtp_port
        self.username = settings.smtp_username
        self.password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self.start_tls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout
        self.mail_from = settings.mail_from

    async def send(self, email: ClaimedEmail) -> None:
        """Hand the message to the SMTP server; raises ``PermanentFailure`` or a transient error."""
        try:
            message = build_message(email, self.mail_from)
        except (ValueError, TypeError) as exc:
            # A header the e-mail package refuses (a line break in an address, say) never gets better.
            raise PermanentFailure(f"cannot build the message: {exc}") from exc
        try:
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPException as exc:
            if _is_permanent(exc):
                raise PermanentFailure(str(exc)) from exc
            raise
