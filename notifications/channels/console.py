"""Prints messages instead of sending them: the demo's provider for every channel."""

from __future__ import annotations

import logging
import sys

from ..models import Message
from .base import SendResult

logger = logging.getLogger("selfcare.console_messages")


class ConsoleTransport:
    name = "console"

    def send(self, message: Message) -> SendResult:
        line = f"[{message.channel_kind} → {message.address}] {message.subject + ': ' if message.subject else ''}{message.body}"
        print(line, file=sys.stdout, flush=True)
        return SendResult(provider_message_id=f"console-{message.pk}")
