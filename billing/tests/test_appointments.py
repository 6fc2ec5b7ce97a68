from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import ChannelKind
from billing.appointments import (
    appointment_move_request,
    appointment_reschedule,
    appointment_schedule,
    appointments_remind,
)
from billing.messages import APPOINTMENT_NOTICE, APPOINTMENT_REMINDER
from billing.models import Appointment
from billing.numbers import format_account_number
from billing.tests.factories import ServiceAccountFactory
from core.dates import format_cldr_date
from core.exceptions import ApplicationError
from core.money import babel_locale
from notifications.models import Message
from notifications.tests.factories import VerifiedChannelFactory

TODAY = dt.date(2026, 12, 1)


@pytest.fixture
def visit(subscriber, supervisor) -> Appointment:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="ar")
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.EMAIL, address="a@example.com", wants_service=False)
    return appointment_schedule(
        account=ServiceAccountFactory(subscriber=subscriber), kind=Appointment.Kind.SMART_METER,
        date=dt.date(2026, 12, 10), window_start=dt.time(8), window_end=dt.time(12), scheduled_by=supervisor,
        today=TODAY,
    )  # fmt: skip


@pytest.mark.django_db
def test_booking_a_visit_tells_the_subscriber_on_channels_that_want_service_messages(visit) -> None:
    notice = Message.objects.get(event=APPOINTMENT_NOTICE.name)
    assert notice.channel_kind == "sms"
    assert "10/12/2026" in notice.body and "08:00" in notice.body and visit.account.number in notice.body


@pytest.mark.django_db
def test_a_visit_cannot_be_booked_in_the_past_or_with_a_backwards_window(subscriber, supervisor) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    with pytest.raises(ApplicationError):
        appointment_schedule(
            account=account, kind="other", date=TODAY - dt.timedelta(days=1), window_start=dt.time(8),
            window_end=dt.time(9), scheduled_by=supervisor, today=TODAY,
        )  # fmt: skip
    with pytest.raises(ApplicationError):
        appointment_schedule(
            account=account, kind="other", date=TODAY, window_start=dt.time(9), window_end=dt.time(8),
            scheduled_by=supervisor, today=TODAY,
        )  # fmt: skip


@pytest.mark.django_db
def test_the_subscriber_may_ask_to_move_it_once(visit) -> None:
    appointment_move_request(
        appointment=visit, preferred_date=dt.date(2026, 12, 15), preferred_window="afternoon", today=TODAY
    )
    assert visit.moved_once and visit.move_preferred_date == dt.date(2026, 12, 15)
    with pytest.raises(ApplicationError) as refused:
        appointment_move_request(
            appointment=visit, preferred_date=dt.date(2026, 12, 16), preferred_window="any", today=TODAY
        )
    assert refused.value.code == "already_moved"


@pytest.mark.django_db
def test_a_new_date_is_announced_again_and_reminded_once_the_day_before(visit, supervisor) -> None:
    appointment_reschedule(
        appointment=visit, date=dt.date(2026, 12, 15), window_start=dt.time(14), window_end=dt.time(17), by=supervisor,
        today=TODAY,
    )  # fmt: skip
    visit.refresh_from_db()
    assert visit.status == Appointment.Status.MOVED
    assert Message.objects.filter(event=APPOINTMENT_NOTICE.name).count() == 2
    assert appointments_remind(today=dt.date(2026, 12, 13)) == 0
    assert appointments_remind(today=dt.date(2026, 12, 14)) == 1
    assert appointments_remind(today=dt.date(2026, 12, 14)) == 0
    reminder = Message.objects.get(event=APPOINTMENT_REMINDER.name)
    assert "15/12/2026" in reminder.body and "14:00" in reminder.body


@pytest.mark.django_db
def test_the_dashboard_shows_the_visit_and_takes_one_move_request(csrf_client, subscriber, supervisor) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    today = timezone.localdate()
    visit = appointment_schedule(
        account=ServiceAccountFactory(subscriber=subscriber), kind=Appointment.Kind.METER_CHANGE,
        date=today + dt.timedelta(days=5), window_start=dt.time(8), window_end=dt.time(12), scheduled_by=supervisor,
    )  # fmt: skip
    page = csrf_client.get(reverse("billing:dashboard")).content.decode()
    # Written out as every other date of the page ("10 décembre 2026"), not 10/12/2026.
    assert 'data-testid="appointment"' in page and long_date(page, today + dt.timedelta(days=5)) in page
    assert not re.search(r"\d\d/\d\d/\d{4}", page)
    with translation.override("ar"):
        arabic = csrf_client.get(reverse("billing:dashboard")).content.decode()
    assert 'lang="ar"' in arabic and long_date(arabic, today + dt.timedelta(days=5)) in arabic
    assert "08:00–12:00" in page and format_account_number(visit.account.number) in page
    # A visit already done, or one whose day has passed, is not "upcoming".
    done = appointment_schedule(
        account=visit.account, kind=Appointment.Kind.RECONNECTION,
        date=today + dt.timedelta(days=2), window_start=dt.time(14), window_end=dt.time(16), scheduled_by=supervisor,
    )  # fmt: skip
    Appointment.objects.filter(pk=done.pk).update(status=Appointment.Status.DONE)
    Appointment.objects.create(
        account=visit.account, kind=Appointment.Kind.OTHER, date=today - dt.timedelta(days=1),
        window_start=dt.time(9), window_end=dt.time(10), scheduled_by=supervisor,
    )  # fmt: skip
    assert csrf_client.get(reverse("billing:dashboard")).content.decode().count('data-testid="appointment"') == 1
    token = csrf_client.cookies["csrftoken"].value
    url = reverse("billing:appointment_move", args=[visit.pk])
    wish = (today + dt.timedelta(days=9)).isoformat()
    response = csrf_client.post(
        url, {"preferred_date": wish, "preferred_window": "morning", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.moved_once
    assert csrf_client.post(url, {"preferred_date": "nonsense", "csrfmiddlewaretoken": token}).status_code == 302
    page = csrf_client.get(reverse("billing:dashboard")).content.decode()
    assert "<details>" not in page  # the form is gone once asked
    assert long_date(page, today + dt.timedelta(days=9)) in page
    assert not re.search(r"\d\d/\d\d/\d{4}", page)


def long_date(page: str, day: dt.date) -> str:
    """`day` as the page's language writes a date out."""
    language = re.search(r'<html lang="(\w+)"', page).group(1)
    return format_cldr_date(day, "d MMMM y", babel_locale(language))


@pytest.mark.django_db
def test_another_subscriber_cannot_move_alices_visit(client, visit, other_subscriber) -> None:
    client.force_login(other_subscriber.user)
    url = reverse("billing:appointment_move", args=[visit.pk])
    assert client.post(url, {"preferred_date": "2026-12-20", "preferred_window": "any"}).status_code == 404
