"""A local SMTP server for the mail tests: aiosmtpd storing what it receives. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import contextlib
import email
import email.message
from collections.abc import Iterator

from aiosmtpd.controller import Controller

from scripts.embedded_redis import free_port


class Mailbox:
    """An aiosmtpd handler that stores messages, after refusing the first few if told to."""

    def __init__(self, refuse_with: list[str] | None = None) -> None:
        self.messages: list[email.message.Message] = []
        self.refusals = list(refuse_with or [])

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.refusals:
            return self.refusals.pop(0)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"

    url = ""

    @classmethod
    @contextlib.contextmanager
    def serving(cls, refuse_with: list[str] | None = None) -> Iterator[Mailbox]:
        """A mailbox behind an SMTP server on a free port; ``url`` is its ``SMTP_URL``."""
        mailbox = cls(refuse_with)
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        mailbox.url = f"smtp://127.0.0.1:{controller.port}"
        try:
            yield mailbox
        finally:
            controller.stop()
