"""Writes for notifications: turn an event into outbox rows, in the caller's transaction.

Nothing here talks to a provider. `notify` only writes `Message` rows, deduped
by a unique key, and asks for the relay to run once the transaction commits; if
the broker is down at that moment the periodic relay finds the rows anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import ChannelKind, ContactChannel, Subscriber
from core.money import Money, format_money
from core.sql import insert_returning

from .channels.registry import quiet_channel_kinds
from .events import SECRET_MASK, EventType
from .models import Message
from .relay import relay_kick_done, relay_kick_wanted
from .sms import GSM7_BASIC, GSM7_EXTENDED, sms_length
from .tasks import outbox_relay

logger = logging.getLogger(__name__)

# Rows per INSERT: 25 columns each, well under SQLite's 32,766 parameters.
OUTBOX_INSERT_BATCH = 500


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    encoding: str = ""
    segments: int = 0


def gsm7_fold(text: str) -> str:
    """Drop accents GSM-7 lacks (ç, ê, î…) so a French SMS stays 160 characters a
    segment instead of 70; letters GSM-7 has (é, è, à, ù) are kept."""
    out = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENDED:
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)[0]
        out.append(base if base in GSM7_BASIC else ch)
    return "".join(out)


def message_render(*, event: EventType, language: str, channel_kind: str, context: dict[str, Any]) -> Rendered:
    context = {"operator": settings.SELFCARE_OPERATOR_NAME, **context}
    with translation.override(language):
        body = render_to_string(f"{event.templates}.{language}.txt", context).strip()
        if channel_kind == ChannelKind.EMAIL:
            subject = render_to_string(f"{event.templates}.subject.{language}.txt", context).strip()
            return Rendered(subject=subject, body=body)
    if channel_kind != ChannelKind.SMS:
        return Rendered(subject="", body=body)
    # Bidi marks help a web page, not an SMS, where each costs a character.
    body = body.replace("\u200f", "").replace("\u200e", "")
    if language != "ar":
        body = gsm7_fold(body)
    length = sms_length(body)
    return Rendered(subject="", body=body, encoding=length.encoding, segments=length.segments)


def quiet_hours_end(*, now: dt.datetime) -> dt.datetime | None:
    """When quiet hours (operator time) end if `now` falls inside them, else None."""
    start, end = settings.SELFCARE_QUIET_HOURS
    local = timezone.localtime(now)
    minutes = local.hour * 60 + local.minute
    start_m, end_m = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    inside = (start_m <= minutes or minutes < end_m) if start_m > end_m else (start_m <= minutes < end_m)
    if not inside:
        return None
    morning = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if morning <= local:
        morning += dt.timedelta(days=1)
    return morning


def _eligible(channels: Iterable[ContactChannel], event: EventType) -> list[ContactChannel]:
    if not event.verified_only:
        return list(channels)
    return [c for c in channels if c.is_verified and (event.preference is None or getattr(c, event.preference))]


def notify(
    *,
    event: EventType,
    subscriber: Subscriber,
    object_key: str,
    context: dict[str, Any],
    reference: str = "",
    channels: Iterable[ContactChannel] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Write one outbox row per eligible channel; returns how many are new.

    Re-running it for the same event and object adds nothing: the dedupe key
    (event, object, channel) is unique, and conflicts are skipped by the database.
    """
    rows = message_rows(
        event=event, subscriber=subscriber, object_key=object_key, context=context, reference=reference,
        channels=subscriber.channels.all() if channels is None else channels, now=now or timezone.now(),
    )  # fmt: skip
    return outbox_write(rows)


def message_rows(
    *,
    event: EventType,
    subscriber: Subscriber,
    object_key: str,
    context: dict[str, Any],
    channels: Iterable[ContactChannel],
    now: dt.datetime,
    reference: str = "",
) -> list[Message]:
    """The unsaved outbox rows of one event: rendered, sized and scheduled.

    `reference` is what the subscriber knows the message to be about (an
    account number): the back office searches on it.
    """
    rows = []
    if event.sealed_param:
        # Never stored in clear, so never shown to staff: the relay fills it in.
        context = {**context, event.sealed_param: SECRET_MASK}
    quiet_kinds = quiet_channel_kinds()
    for channel in _eligible(channels, event):
        localised = _localise(context, channel.language)
        rendered = message_render(event=event, language=channel.language, channel_kind=channel.kind, context=localised)
        template_name, template_params = "", []
        if channel.kind == ChannelKind.WHATSAPP:
            template_name = f"selfcare_{event.name}"
            with translation.override(channel.language):
                template_params = [str(localised.get(key, "")) for key in event.whatsapp_params]
        wait_until = None if event.urgent or channel.kind not in quiet_kinds else quiet_hours_end(now=now)
        rows.append(
            Message(
                dedupe_key=message_dedupe_key(event=event, object_key=object_key, channel_id=channel.pk),
                event=event.name,
                subscriber=subscriber,
                reference=reference,
                channel=channel,
                channel_kind=channel.kind,
                address=channel.address,
                language=channel.language,
                subject=rendered.subject,
                body=rendered.body,
                encoding=rendered.encoding,
                segments=rendered.segments,
                urgent=event.urgent,
                template_name=template_name,
                template_params=template_params,
                next_attempt_at=wait_until or now,
            )
        )
    return rows


def message_dedupe_key(*, event: EventType, object_key: str, channel_id: int) -> str:
    return f"{event.name}:{object_key}:{channel_id}"


def message_object_key(*, message: Message) -> str:
    """The `object_key` a message was written for (its dedupe key's middle part)."""
    return message.dedupe_key.split(":", 1)[1].rsplit(":", 1)[0]


def outbox_write(rows: list[Message]) -> int:
    """Insert rows whose dedupe key is new; returns how many this call really wrote.

    `INSERT … ON CONFLICT DO NOTHING RETURNING id` (core.sql.insert_returning):
    a row another writer holds
    (committed, or in flight: PostgreSQL waits for it) is skipped and not
    counted, so two concurrent runs report counts that add up to the rows
    written. (bulk_create(ignore_conflicts=True) returns every object given.)
    The relay runs once the transaction commits.
    """
    if not rows:
        return 0
    created = 0
    # All batches or none; inside the caller's transaction (a payment's) without a
    # savepoint of its own: two statements fewer, and ON CONFLICT raises nothing to catch.
    with transaction.atomic(savepoint=False):
        for start in range(0, len(rows), OUTBOX_INSERT_BATCH):
            created += len(insert_returning(Message, rows[start : start + OUTBOX_INSERT_BATCH], ignore_conflicts=True))
    if created:
        _kick_relay_on_commit()
    return created


def _kick_relay_on_commit() -> None:
    """Ask for one relay run when the transaction commits, however many writes it made."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(entry[1] is _kick_relay for entry in connection.run_on_commit):
        return
    transaction.on_commit(_kick_relay)


def _kick_relay() -> None:
    # One kick pending at a time: the relay it wakes sends this commit's rows too.
    if not relay_kick_wanted():
        return
    try:
        # No publish retries: with the broker down, the periodic relay will find the rows.
        outbox_relay.apply_async(retry=False)
    except Exception:
        relay_kick_done()  # nothing is pending: the next commit tries again
        logger.warning("Could not enqueue the outbox relay; the periodic relay will.", exc_info=True)


def _localise(context: dict[str, Any], language: str) -> dict[str, Any]:
    """Format money and dates in the message's language, not the request's.
    Dates are numeric (25/11/2026): short, and read the same in every language."""
    out = dict(context)
    for key, value in context.items():
        if isinstance(value, Money):
            out[key] = format_money(value.amount, value.currency, language)
        elif isinstance(value, dt.date):
            out[key] = value.strftime("%d/%m/%Y")
    return out


def channel_messages_cancel(*, channel: ContactChannel) -> int:
    """Cancel what is still queued for a channel that is being removed."""
    return Message.objects.filter(channel=channel, status=Message.Status.PENDING).update(
        status=Message.Status.CANCELLED, last_error="The channel was removed."
    )


# --- Back office -----------------------------------------------------------


def message_resend(*, message: Message) -> bool:
    """Put a failed message back in the queue, from its first attempt."""
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    if updated:
        _kick_relay_on_commit()
    return bool(updated)
