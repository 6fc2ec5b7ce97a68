"""What a bill says in a message: billing's events, their context, and the
announcement of one bill or of a whole run.

The outbox (notifications) renders, schedules and sends; it knows nothing of
bills. Texts are under templates/billing/messages/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import cache
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from core.money import Money
from core.sql import int_array
from notifications.bulk import SqlChoice, SqlDate, SqlMoney, SqlText, outbox_insert_select
from notifications.events import EventType
from notifications.services import message_rows, notify, outbox_write

from .models import Bill, Plan, PlanChange, ServiceAccount, ServiceKind
from .pdf import bill_email_attachments

BILL_ISSUED = EventType(
    name="bill_issued",
    label=_("Bill issued"),
    templates="billing/messages/bill_issued",
    preference="wants_bills",
    whatsapp_params=("kind", "period", "account", "amount", "due_date", "link"),
    # The e-mail carries the bill's PDF, drawn when it is sent.
    email_attachments=bill_email_attachments,
)
PAYMENT_RECEIVED = EventType(
    name="payment_received",
    label=_("Payment received"),
    templates="billing/messages/payment_received",
    preference="wants_bills",
    whatsapp_params=("amount", "account", "receipt", "remaining"),
)
DUE_REMINDER = EventType(
    name="due_reminder",
    label=_("Due-date reminder"),
    templates="billing/messages/due_reminder",
    preference="wants_reminders",
    whatsapp_params=("period", "account", "amount", "due_date", "link"),
)
# A disconnection warning must reach the subscriber in time, even at night.
OVERDUE_NOTICE = EventType(
    name="overdue_notice",
    label=_("Overdue notice"),
    templates="billing/messages/overdue_notice",
    preference="wants_reminders",
    urgent=True,
    whatsapp_params=("period", "account", "amount", "disconnection_date", "link"),
)

# The overdue ladder's third step (billing/dunning.py): the account's overdue total
# and the day the field team may cut the service.
DISCONNECTION_WARNING = EventType(
    name="disconnection_warning",
    label=_("Disconnection warning"),
    templates="billing/messages/disconnection_warning",
    preference="wants_reminders",
    urgent=True,
    whatsapp_params=("account", "amount", "disconnection_date", "link"),
)
# Technician visits (billing/appointments.py): the notice when scheduled or moved,
# and the reminder the day before.
APPOINTMENT_NOTICE = EventType(
    name="appointment",
    label=_("Technician appointment"),
    templates="billing/messages/appointment",
    preference="wants_service",
    whatsapp_params=("visit", "account", "date", "window_start", "window_end"),
)
APPOINTMENT_REMINDER = EventType(
    name="appointment_reminder",
    label=_("Technician appointment reminder"),
    templates="billing/messages/appointment_reminder",
    preference="wants_service",
    whatsapp_params=("visit", "account", "date", "window_start", "window_end"),
)

# A plan change (billing/plan_changes.py): confirmed (scheduled or applied), waiting
# for a supervisor, or refused by one.
PLAN_CHANGE_CONFIRMED = EventType(
    name="plan_change_confirmed",
    label=_("Plan change confirmed"),
    templates="billing/messages/plan_change_confirmed",
    preference="wants_bills",
    whatsapp_params=("account", "from_plan", "to_plan", "effective_date"),
)
PLAN_CHANGE_PENDING = EventType(
    name="plan_change_pending",
    label=_("Plan change waiting for approval"),
    templates="billing/messages/plan_change_pending",
    preference="wants_bills",
    whatsapp_params=("account", "to_plan"),
)
PLAN_CHANGE_REJECTED = EventType(
    name="plan_change_rejected",
    label=_("Plan change refused"),
    templates="billing/messages/plan_change_rejected",
    preference="wants_bills",
    whatsapp_params=("account", "to_plan"),
)


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


def bill_context_sql(*, currency: str) -> dict[str, Any]:
    """`bill_context` as SQL over a bill `b` and its account `a`, for bills in `currency`."""
    return {
        "account": SqlText("a.number"),
        "kind": SqlChoice("a.kind", {kind: ServiceKind(kind).label for kind in ServiceKind.values}),
        "period": SqlText("to_char(b.period, 'MM/YYYY')"),
        "amount": SqlMoney("b.amount_due", currency),
        "due_date": SqlDate("b.due_date"),
        "link": SqlText("b.number", prefix=_short_link_prefix()),
    }


def bills_announce_set(
    *, bill_ids: list[int], account_ids: list[int], currency: str, now: dt.datetime | None = None
) -> int:
    """`bill_announce` for many bills of one currency in one statement (the bill
    run, on PostgreSQL): the same rows, never twice per channel. `account_ids`
    are the bills' accounts (both lists bound the join to index lookups). Raises
    notifications.bulk.BulkUnsupported when the locale needs the per-message path."""
    return outbox_insert_select(
        event=BILL_ISSUED,
        source=(
            f"{Bill._meta.db_table} b JOIN {ServiceAccount._meta.db_table} a ON a.id = b.account_id "
            "WHERE b.id = ANY(%s::bigint[]) AND a.id = ANY(%s::bigint[])"
        ),
        params=[int_array(bill_ids), int_array(account_ids)],
        subscriber="a.subscriber_id",
        object_key="b.number",
        reference="a.number",
        context=bill_context_sql(currency=currency),
        now=now,
    )


def bill_announce(*, bill: Bill, now: dt.datetime | None = None) -> int:
    """Announce an issued bill on every channel that wants bills; idempotent."""
    return notify(
        event=BILL_ISSUED,
        subscriber=bill.account.subscriber,
        reference=bill.account.number,
        object_key=bill.number,
        context=bill_context(bill),
        now=now,
    )


def bills_announce(*, bills: Iterable[Bill], now: dt.datetime | None = None, chunk: int = 1000) -> int:
    """Announce many bills (the bill run, the command, the admin action) with a
    few queries per thousand bills; returns messages created. Idempotent.

    Bills should come with `account__subscriber` selected and the subscribers'
    `channels` prefetched (`bills_with_channels`).
    """
    return bills_notify(event=BILL_ISSUED, bills=bills, now=now, chunk=chunk)


def bills_notify(
    *,
    event: EventType,
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
            reference=bill.account.number, channels=subscriber.channels.all(), now=now,
        )  # fmt: skip
        if len(rows) >= chunk:
            created += outbox_write(rows)
            rows = []
    return created + outbox_write(rows)


def _plan_name(plan: Plan) -> str:
    # Lazy: the plan's name in the language each message is rendered in.
    return lazy(lambda: plan.name, str)()


def plan_change_context(change: PlanChange) -> dict[str, Any]:
    return {
        "account": change.account.number,
        "kind": ServiceKind(change.kind).label,
        "from_plan": _plan_name(change.from_plan),
        "to_plan": _plan_name(change.to_plan),
        "effective_date": change.effective_date,
        "immediate": change.mode == PlanChange.Mode.IMMEDIATE,
        "proration": Money(change.proration_amount, change.currency) if change.proration_amount else None,
    }


def plan_change_announce(*, change: PlanChange, event: EventType, now: dt.datetime | None = None) -> int:
    """Tell the subscriber about their plan change; once per change, event and channel."""
    return notify(
        event=event,
        subscriber=change.account.subscriber,
        reference=change.account.number,
        object_key=f"planchange-{change.pk}",
        context=plan_change_context(change),
        now=now,
    )
