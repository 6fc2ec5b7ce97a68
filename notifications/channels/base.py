"""What every provider module offers the relay: send one message, or say why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..models import Message


class TransientError(Exception):
    """Try again later: a timeout, a 5xx, a throttle."""


class PermanentError(Exception):
    """Trying again cannot help: a refused number, bad credentials, a 4xx."""


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None
    # Some gateways answer "Success" with a cost but no delivery yet; the
    # status says where the message stands after the call.
    status: str = Message.Status.SENT


class Transport(Protocol):
    name: str

    def send(self, message: Message) -> SendResult: ...
