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
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import ChannelKind, ContactChannel, Subscriber
from billing.models import Bill, BillLine, ServiceAccount, ServiceKind
from billing.tariffs import LineDraft
from core.money import Money, format_money, quantize

from .models import DeliveryReport, Event, Message, SmsAlertSubscription
from .sms import GSM7_BASIC, GSM7_EXTENDED, sms_length

logger = logging.getLogger(__name__)

# Which subscriber preference lets each event through.
PREFERENCE = {
    Event.BILL_ISSUED: "wants_bills",
    Event.PAYMENT_RECEIVED: "wants_bills",
    Event.DUE_REMINDER: "wants_reminders",
    Event.OVERDUE_NOTICE: "wants_reminders",
    Event.APPOINTMENT: "wants_service",
}
# Sent at once, even at night.
URGENT_EVENTS = {Event.VERIFICATION_CODE, Event.OVERDUE_NOTICE}
QUIET_CHANNELS = {ChannelKind.SMS, ChannelKind.WHATSAPP}
# WhatsApp sends business-initiated messages only from approved templates
# (`selfcare_<event>`, one per language); these are their body parameters, in order.
WHATSAPP_TEMPLATE_PARAMS = {
    Event.BILL_ISSUED: ("kind", "period", "account", "amount", "due_date", "link"),
    Event.PAYMENT_RECEIVED: ("amount", "account", "receipt", "remaining"),
    Event.DUE_REMINDER: ("period", "account", "amount", "due_date", "link"),
    Event.OVERDUE_NOTICE: ("period", "account", "amount", "disconnection_date", "link"),
    Event.APPOINTMENT: ("date", "start", "end", "account", "reference"),
    Event.VERIFICATION_CODE: ("code",),
}


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


def message_render(*, event: str, language: str, channel_kind: str, context: dict[str, Any]) -> Rendered:
    context = {"operator": settings.SELFCARE_OPERATOR_NAME, "event": event, **context}
    with translation.override(language):
        body = render_to_string(f"notifications/{event}.{language}.txt", context).strip()
        if channel_kind == ChannelKind.EMAIL:
            subject = render_to_string(f"notifications/subject.{language}.txt", context).strip()
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


def _eligible(channels: Iterable[ContactChannel], event: str) -> list[ContactChannel]:
    preference = PREFERENCE.get(event)
    return [c for c in channels if c.is_verified and (preference is None or getattr(c, preference))]


def notify(
    *,
    event: str,
    subscriber: Subscriber,
    object_key: str,
    context: dict[str, Any],
    account: ServiceAccount | None = None,
    channels: Iterable[ContactChannel] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Write one outbox row per eligible channel; returns how many are new.

    Re-running it for the same event and object adds nothing: the dedupe key
    (event, object, channel) is unique, and conflicts are skipped by the database.
    """
    rows = message_rows(
        event=event, subscriber=subscriber, object_key=object_key, context=context, account=account,
        channels=subscriber.channels.all() if channels is None else channels, now=now or timezone.now(),
    )  # fmt: skip
    return outbox_write(rows)


def message_rows(
    *,
    event: str,
    subscriber: Subscriber,
    object_key: str,
    context: dict[str, Any],
    account: ServiceAccount | None,
    channels: Iterable[ContactChannel],
    now: dt.datetime,
) -> list[Message]:
    """The unsaved outbox rows of one event: rendered, sized and scheduled."""
    targets = list(channels) if event == Event.VERIFICATION_CODE else _eligible(channels, event)
    rows = []
    for channel in targets:
        localised = _localise(context, channel.language)
        rendered = message_render(event=event, language=channel.language, channel_kind=channel.kind, context=localised)
        template_name, template_params = "", []
        if channel.kind == ChannelKind.WHATSAPP:
            template_name = f"selfcare_{event}"
            with translation.override(channel.language):
                template_params = [str(localised.get(key, "")) for key in WHATSAPP_TEMPLATE_PARAMS[event]]
        urgent = event in URGENT_EVENTS
        wait_until = None if urgent or channel.kind not in QUIET_CHANNELS else quiet_hours_end(now=now)
        rows.append(
            Message(
                dedupe_key=f"{event}:{object_key}:{channel.pk}",
                event=event,
                subscriber=subscriber,
                account=account,
                channel=channel,
                channel_kind=channel.kind,
                address=channel.address,
                language=channel.language,
                subject=rendered.subject,
                body=rendered.body,
                encoding=rendered.encoding,
                segments=rendered.segments,
                urgent=urgent,
                template_name=template_name,
                template_params=template_params,
                next_attempt_at=wait_until or now,
            )
        )
    return rows


def outbox_write(rows: list[Message]) -> int:
    """Insert rows whose dedupe key is new; the relay runs once the transaction commits."""
    if not rows:
        return 0
    keys = {row.dedupe_key for row in rows}
    existing = set(Message.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    # ignore_conflicts covers a concurrent writer between the read and the insert.
    Message.objects.bulk_create([r for r in rows if r.dedupe_key not in existing], ignore_conflicts=True)
    created = len(keys - existing)
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
    from .tasks import outbox_relay

    try:
        # No publish retries: with the broker down, the periodic relay will find the rows.
        outbox_relay.apply_async(retry=False)
    except Exception:
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


@cache
def _short_link_prefix() -> str:
    # reverse() once: it costs more than rendering the SMS, per bill of a run.
    return settings.SITE_URL.rstrip("/") + reverse("bill_short_link", args=["0"])[:-1]


def bill_context(bill: Bill) -> dict[str, Any]:
    account = bill.account
    return {
        "account": account.number,
        "kind": ServiceKind(account.kind).label,  # lazy: rendered in the message's language
        "period": bill.period.strftime("%m/%Y"),
        "amount": Money(bill.amount_due, bill.currency),
        "due_date": bill.due_date,
        "link": _short_link_prefix() + bill.number,
    }


def bill_announce(*, bill: Bill, now: dt.datetime | None = None) -> int:
    """Announce an issued bill on every channel that wants bills; idempotent."""
    return notify(
        event=Event.BILL_ISSUED,
        subscriber=bill.account.subscriber,
        account=bill.account,
        object_key=bill.number,
        context=bill_context(bill),
        now=now,
    )


# --- Delivery reports ------------------------------------------------------

# A report may only move a message up this ladder: a late "delivered" never
# downgrades "read", and "failed" cannot undo a delivery.
REPORT_FROM = {
    Message.Status.SENT: (Message.Status.SENDING,),
    Message.Status.DELIVERED: (Message.Status.SENDING, Message.Status.SENT),
    Message.Status.READ: (Message.Status.SENDING, Message.Status.SENT, Message.Status.DELIVERED),
    Message.Status.FAILED: (Message.Status.SENDING, Message.Status.SENT),
}
STAMP = {Message.Status.DELIVERED: "delivered_at", Message.Status.READ: "read_at"}


def delivery_report_record(
    *, provider: str, provider_message_id: str, raw_status: str, status: str, payload: dict[str, Any]
) -> Message | None:
    """Store a report and apply it; returns the message, or None while none matches.

    A report with no message yet is kept and applied when the worker records
    the message id (`delivery_reports_apply_waiting`), so none is lost.
    """
    with transaction.atomic():
        report, _ = DeliveryReport.objects.get_or_create(
            provider=provider,
            provider_message_id=provider_message_id,
            raw_status=raw_status,
            defaults={"status": status, "payload": payload},
        )
        message = Message.objects.filter(provider=provider, provider_message_id=provider_message_id).first()
        if message is None:
            return None
        if report.applied_at is None:
            _apply(report, message)
            message.refresh_from_db()  # _apply writes with UPDATEs: return what is stored
    return message


def delivery_reports_apply_waiting(*, provider: str, provider_message_ids: Iterable[str]) -> int:
    """Apply the reports that arrived before their messages' ids were recorded."""
    ids = list(provider_message_ids)
    with transaction.atomic():
        waiting = list(
            DeliveryReport.objects.select_for_update()
            .filter(provider=provider, provider_message_id__in=ids, applied_at__isnull=True)
            .order_by("received_at")
        )
        if not waiting:
            return 0
        messages = {
            m.provider_message_id: m
            for m in Message.objects.filter(
                provider=provider, provider_message_id__in={r.provider_message_id for r in waiting}
            )
        }
        applied = 0
        for report in waiting:
            if report.provider_message_id in messages:
                _apply(report, messages[report.provider_message_id])
                applied += 1
    return applied


def _apply(report: DeliveryReport, message: Message) -> None:
    now = timezone.now()
    changes: dict[str, Any] = {"status": report.status}
    if report.status in STAMP:
        changes[STAMP[report.status]] = now
    if report.status == Message.Status.FAILED:
        changes["last_error"] = f"{report.provider}: {report.raw_status}"
    Message.objects.filter(pk=message.pk, status__in=REPORT_FROM.get(report.status, ())).update(**changes)
    if report.status == Message.Status.READ:
        # Read implies delivered; keep the delivery time if the report skipped it.
        Message.objects.filter(pk=message.pk, delivered_at__isnull=True).update(delivered_at=now)
    DeliveryReport.objects.filter(pk=report.pk).update(message=message, applied_at=now)


# --- Back office -----------------------------------------------------------


def message_resend(*, message: Message) -> bool:
    """Put a failed message back in the queue, from its first attempt."""
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    if updated:
        _kick_relay_on_commit()
    return bool(updated)


def bills_announce(*, bills: Iterable[Bill], now: dt.datetime | None = None, chunk: int = 1000) -> int:
    """Announce many bills (the bill run, the command, the admin action) with a
    few queries per thousand bills; returns messages created. Idempotent.

    Bills should come with `account__subscriber` selected and the subscribers'
    `channels` prefetched.
    """
    return bills_notify(event=Event.BILL_ISSUED, bills=bills, now=now, chunk=chunk)


def bills_notify(
    *,
    event: str,
    bills: Iterable[Bill],
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    chunk: int = 1000,
) -> int:
    """One bill event (issued, reminder, overdue notice) for many bills; idempotent
    per (event, bill, channel)."""
    now = now or timezone.now()
    created, rows = 0, []
    for bill in bills:
        subscriber = bill.account.subscriber
        rows += message_rows(
            event=event, subscriber=subscriber, object_key=bill.number, context={**bill_context(bill), **(extra or {})},
            account=bill.account, channels=subscriber.channels.all(), now=now,
        )  # fmt: skip
        if len(rows) >= chunk:
            created += outbox_write(rows)
            rows = []
    return created + outbox_write(rows)


# --- Paid SMS alert service ------------------------------------------------


def sms_alert_subscribe(*, account: ServiceAccount, started_on: dt.date) -> SmsAlertSubscription:
    """Record the subscription; subscribing again while one is open changes nothing."""
    open_one = account.sms_alert_subscriptions.filter(ended_on__isnull=True).first()
    if open_one:
        return open_one
    return SmsAlertSubscription.objects.create(account=account, started_on=started_on)


def sms_alert_fee_lines(*, account: ServiceAccount, period: dt.date, currency: str | None = None) -> list[LineDraft]:
    """The fee lines bill generation adds for `period`: the yearly fee falls in
    the subscription's anniversary month, as long as it is running then."""
    currency = currency or settings.SELFCARE_CURRENCY
    period = period.replace(day=1)
    for subscription in account.sms_alert_subscriptions.all():
        start = subscription.started_on.replace(day=1)
        running = start <= period and (subscription.ended_on is None or subscription.ended_on >= period)
        if running and period.month == start.month:
            fee = quantize(Decimal(settings.SELFCARE_SMS_ALERT_YEARLY_FEE), currency)
            return [LineDraft(kind=BillLine.Kind.FEE, amount=fee, quantity=Decimal(1))]
    return []
