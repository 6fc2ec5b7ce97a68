"""Kinds of message, declared by the app that owns the event.

The outbox knows nothing of bills or payments: an app describes each of its
events once (which channel preference lets it through, whether it may wake a
subscriber at night, its WhatsApp template's parameters, where its texts are)
and passes that description to `notify`. Declaring an event also registers it,
so the back office can show its label for rows written long ago.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

# What the outbox stores in place of a secret (a verification code): as long as
# six digits and GSM-7, so the SMS is sized right; the relay fills the value in.
SECRET_MASK = "******"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True)
class Attachment:
    """A file an e-mail carries: made just before sending, never stored in the outbox."""

    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True)
class EventType:
    name: str  # stored on each message; part of its dedupe key
    label: str | Promise
    # Texts: `<templates>.<language>.txt`, and `<templates>.subject.<language>.txt` for e-mail.
    templates: str
    # The ContactChannel flag (wants_bills, wants_reminders…) that lets it through;
    # None sends to every verified channel given.
    preference: str | None = None
    # Urgent messages ignore quiet hours (codes, disconnection warnings).
    urgent: bool = False
    # The approved WhatsApp template `selfcare_<name>` takes these context keys, in order.
    whatsapp_params: tuple[str, ...] = ()
    # Only to verified channels (False for the code that verifies one).
    verified_only: bool = True
    # A context key never stored: the row keeps SECRET_MASK, and just before
    # sending the relay asks `sealed_fill(messages)` for each row's value
    # ({message pk: value}; None when it is no longer valid: the row is cancelled).
    sealed_param: str = ""
    sealed_fill: Callable[[list[Any]], dict[int, str | None]] | None = None
    # E-mail only: the files to attach, asked of the app that owns the event just
    # before sending (billing draws the bill's PDF), from what the row keeps: its
    # object key and language. So an outbox row stays a few hundred bytes, and the
    # outbox never imports the app. [] when the object is gone; an exception
    # retries the message later, as a provider's error would.
    email_attachments: Callable[[Any], list[Attachment]] | None = None

    def __post_init__(self) -> None:
        _registry[self.name] = self


_registry: dict[str, EventType] = {}


def event_get(name: str) -> EventType | None:
    return _registry.get(name)


def event_label(name: str) -> str:
    event = _registry.get(name)
    return str(event.label) if event else name


def event_types() -> list[EventType]:
    """Every event declared so far (apps declare theirs when they load)."""
    return list(_registry.values())
