"""Technician appointments: staff schedule a visit, the subscriber is told on
their channels (those that want service messages), sees it on the dashboard,
may ask once to move it, and is reminded the day before.

Each notice is one outbox row per channel, keyed by the appointment and its
date: a visit moved to another day is announced again (a new date is news),
the same day never twice; the reminder likewise, once per date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from core.audit import audit_as
from core.exceptions import ApplicationError
from notifications.services import notify

from .messages import APPOINTMENT_NOTICE, APPOINTMENT_REMINDER
from .models import Appointment, ServiceAccount

# What a subscriber may ask for when moving a visit.
# A move request's time of day, stored by key; the labels are the one place it is
# put into words (the subscriber's form, the back office's list and page).
PREFERRED_WINDOWS = {
    "morning": gettext_lazy("Morning"),
    "afternoon": gettext_lazy("Afternoon"),
    "any": gettext_lazy("Any time"),
}


def appointment_context(appointment: Appointment) -> dict[str, Any]:
    return {
        "visit": Appointment.Kind(appointment.kind).label,  # lazy: the message's language
        "account": appointment.account.number,
        "date": appointment.date,
        "window_start": f"{appointment.window_start:%H:%M}",
        "window_end": f"{appointment.window_end:%H:%M}",
        "link": settings.SITE_URL.rstrip("/") + "/",
    }


def _announce(appointment: Appointment) -> int:
    return notify(
        event=APPOINTMENT_NOTICE,
        subscriber=appointment.account.subscriber,
        object_key=f"appointment-{appointment.pk}-{appointment.date:%Y%m%d}",
        reference=appointment.account.number,
        context=appointment_context(appointment),
    )


def _check_window(*, date: dt.date, window_start: dt.time, window_end: dt.time, today: dt.date) -> None:
    if window_end <= window_start:
        raise ApplicationError(_("The time window ends before it starts."), code="validation_error")
    if date < today:
        raise ApplicationError(_("The visit cannot be in the past."), code="validation_error")


def appointment_schedule(
    *,
    account: ServiceAccount,
    kind: str,
    date: dt.date,
    window_start: dt.time,
    window_end: dt.time,
    scheduled_by: User,
    notes: str = "",
    today: dt.date | None = None,
) -> Appointment:
    """Book a visit and tell the subscriber, in one transaction (audited)."""
    if kind not in Appointment.Kind.values:
        raise ApplicationError(_("Unknown kind of visit."), code="validation_error")
    _check_window(date=date, window_start=window_start, window_end=window_end, today=today or timezone.localdate())
    with transaction.atomic(), audit_as(scheduled_by):
        appointment = Appointment.objects.create(
            account=account, kind=kind, date=date, window_start=window_start, window_end=window_end,
            notes=notes, scheduled_by=scheduled_by,
        )  # fmt: skip
        _announce(appointment)
    return appointment


def appointment_reschedule(
    *,
    appointment: Appointment,
    date: dt.date,
    window_start: dt.time,
    window_end: dt.time,
    by: User,
    today: dt.date | None = None,
) -> Appointment:
    """Staff set a new date (often the one the subscriber asked for): status
    `moved`, and the subscriber is told again."""
    _check_window(date=date, window_start=window_start, window_end=window_end, today=today or timezone.localdate())
    with transaction.atomic(), audit_as(by):
        locked = Appointment.objects.select_for_update().select_related("account__subscriber").get(pk=appointment.pk)
        if locked.status not in Appointment.UPCOMING_STATUSES:
            raise ApplicationError(_("This visit is done or cancelled."), code="appointment_closed")
        if (locked.date, locked.window_start, locked.window_end) == (date, window_start, window_end):
            return locked
        locked.date, locked.window_start, locked.window_end = date, window_start, window_end
        locked.status = Appointment.Status.MOVED
        locked.save(update_fields=["date", "window_start", "window_end", "status"])
        _announce(locked)
    return locked


def appointment_close(*, appointment: Appointment, status: str, by: User) -> Appointment:
    """Done or cancelled; a closed visit stays closed."""
    if status not in (Appointment.Status.DONE, Appointment.Status.CANCELLED):
        raise ApplicationError(_("A visit closes as done or cancelled."), code="validation_error")
    with transaction.atomic(), audit_as(by):
        locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if locked.status not in Appointment.UPCOMING_STATUSES:
            raise ApplicationError(_("This visit is done or cancelled."), code="appointment_closed")
        locked.status = status
        locked.save(update_fields=["status"])
    return locked


def appointment_move_request(
    *,
    appointment: Appointment,
    preferred_date: dt.date,
    preferred_window: str,
    today: dt.date | None = None,
) -> Appointment:
    """The subscriber asks to move the visit, once; staff see the wish and set the date.

    The flag is set by compare-and-set, so two submits (two tabs) make one request.
    """
    today = today or timezone.localdate()
    if preferred_window not in PREFERRED_WINDOWS:
        raise ApplicationError(_("Choose a time of day."), code="validation_error")
    if preferred_date <= today:
        raise ApplicationError(_("Choose a day after today."), code="validation_error")
    if preferred_date > today + dt.timedelta(days=90):
        raise ApplicationError(_("Choose a day in the next three months."), code="validation_error")
    if appointment.status not in Appointment.UPCOMING_STATUSES or appointment.date < today:
        raise ApplicationError(_("This visit can no longer be moved."), code="appointment_closed")
    with transaction.atomic():
        updated = Appointment.objects.filter(
            pk=appointment.pk, moved_once=False, status__in=Appointment.UPCOMING_STATUSES
        ).update(
            moved_once=True,
            move_preferred_date=preferred_date,
            move_preferred_window=preferred_window,
            move_requested_at=timezone.now(),
        )
        if not updated:
            raise ApplicationError(_("You have already asked to move this visit."), code="already_moved")
    appointment.refresh_from_db()
    return appointment


def appointments_remind(*, today: dt.date | None = None) -> int:
    """Remind subscribers of tomorrow's visits; returns messages written. Once
    per visit, date and channel (the dedupe key), however often it runs."""
    tomorrow = (today or timezone.localdate()) + dt.timedelta(days=1)
    written = 0
    upcoming = Appointment.objects.filter(date=tomorrow, status__in=Appointment.UPCOMING_STATUSES).select_related(
        "account__subscriber"
    )
    for appointment in upcoming.iterator(chunk_size=500):
        with transaction.atomic():
            written += notify(
                event=APPOINTMENT_REMINDER,
                subscriber=appointment.account.subscriber,
                object_key=f"appointment-{appointment.pk}-{appointment.date:%Y%m%d}",
                reference=appointment.account.number,
                context=appointment_context(appointment),
            )
    return written
