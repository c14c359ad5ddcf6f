"""Email through SMTP (``SMTP_URL``), retried on transient failures."""

from __future__ import annotations

import logging
import random
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Annotated
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import EmailStr, Field

from jobs import progress, task
from jobs.context import current_job_id
from jobs.settings import get_settings

log = logging.getLogger(__name__)


class MailConfigError(RuntimeError):
    """SMTP_URL is missing or malformed."""


class MailRejectedError(RuntimeError):
    """The server refused the message for good (5xx)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    ssl: bool
    starttls: bool
    username: str | None
    password: str | None
    sender: str

    @classmethod
    def from_environment(cls) -> SmtpSettings:
        """``SMTP_URL`` = ``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://…`` (implicit TLS)."""
        url = get_settings().SMTP_URL
        if not url:
            raise MailConfigError("SMTP_URL is not set: point it at your SMTP server, e.g. smtp://user:pass@host:587")
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailConfigError(
                f"SMTP_URL must look like smtp://host:port or smtps://host:port, not {parts.scheme}://"
            )
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 587),
            ssl=parts.scheme == "smtps",
            starttls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            sender=get_settings().MAIL_FROM,
        )


def _transient(error: Exception) -> bool:
    """4xx answers, dropped or refused connections and timeouts are worth another try."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= status < 500 for status, _ in error.recipients.values())
    code = getattr(error, "smtp_code", None)
    if code is not None:
        return 400 <= code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    return not isinstance(error, smtplib.SMTPException) and isinstance(error, OSError)


def _send_once(settings: SmtpSettings, message: EmailMessage, timeout: float) -> None:
    client_class = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
    with client_class(settings.host, settings.port, timeout=timeout) as client:
        if settings.starttls:
            client.starttls()
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(message)


@task(timeout=600)
def send(
    to: Annotated[list[EmailStr], Field(min_length=1, max_length=50)],
    subject: Annotated[str, Field(min_length=1, max_length=998)],
    body: str,
    html: str | None = None,
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 5,
    backoff: Annotated[float, Field(ge=0, le=300)] = 5.0,
) -> dict:
    """Send an email (plain text, with an optional HTML part) to up to 50 recipients.

    Transient failures (4xx answers, dropped connections) are retried with backoff;
    a 5xx refusal fails at once. The Message-ID derives from the job id, so a message
    sent twice (at-least-once delivery) can be recognised as the same one.
    """
    settings = SmtpSettings.from_environment()
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    job_id = current_job_id()
    message["Message-ID"] = f"<{job_id}@offload>" if job_id else make_msgid(domain="offload")
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    attempt = 1
    while True:
        try:
            _send_once(settings, message, timeout=30)
            break
        except (smtplib.SMTPException, OSError) as error:
            if not _transient(error):
                raise MailRejectedError(f"the SMTP server refused the message: {error}") from error
            log.warning("attempt %d: transient SMTP failure: %s", attempt, error)
            progress(attempt, max_attempts, f"attempt {attempt} failed")
            if attempt == max_attempts:
                raise
            time.sleep(backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            attempt += 1
    log.info("attempt %d: sent to %d recipient(s)", attempt, len(to))
    return {"message_id": message["Message-ID"], "recipients": len(to), "attempts": attempt}
