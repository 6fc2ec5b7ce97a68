"""E-mail through Django's backend: SMTP in production, the console by default."""

from __future__ import annotations

from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend

from ..models import Message
from .base import SendResult, TransientError


class EmailTransport:
    name = "email"

    def __init__(self, connection: BaseEmailBackend | None = None) -> None:
        self.connection = connection

    def send(self, message: Message) -> SendResult:
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            to=[message.address],
            headers={"X-Selfcare-Reference": message.dedupe_key},
            connection=self.connection or get_connection(),
        )
        for attachment in message.attachments:
            email.attach(attachment.filename, attachment.content, attachment.mimetype)
        try:
            email.send()
        except OSError as exc:  # SMTP down, refused connection, timeouts
            raise TransientError(f"mail server: {exc}") from exc
        return SendResult(provider_message_id=None)
