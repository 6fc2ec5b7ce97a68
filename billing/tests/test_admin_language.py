"""The back office speaks the clerk's language (issue 10): Django's "Change"
links are not the consumption table's "Évolution"/"التغيّر", the index title is
translated, and the outbox names events and statuses, not identifiers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ChannelKind, User
from billing.appointments import appointment_move_request, appointment_schedule
from billing.messages import bill_announce
from billing.models import Appointment
from billing.runs import bill_run_start
from notifications.tests.factories import VerifiedChannelFactory

from .factories import BillFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "change", "wrong_change", "title"),
    [("fr", "Modifier", "Évolution", "Back-office de l’agence"), ("ar", "تعديل", "التغيّر", "المكتب الخلفي للوكالة")],
)
def test_the_admin_index_says_change_and_its_title_in_the_clerks_language(
    client: Client, superuser: User, language: str, change: str, wrong_change: str, title: str
) -> None:
    client.force_login(superuser)
    body = client.get(f"/{language}/admin/").content.decode()
    assert change in body
    assert wrong_change not in body
    assert title in body and "Agency back office" not in body


def test_the_consumption_table_still_says_evolution(client: Client, subscriber) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    client.force_login(subscriber.user)
    body = client.get(f"/fr/accounts/{account.number}/consumption/").content.decode()
    assert "Évolution" in body or "Aucune consommation" in body


def test_the_outbox_lists_event_and_status_names_not_identifiers(client: Client, superuser: User, subscriber) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="ar")
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    client.force_login(superuser)
    body = client.get("/fr/admin/notifications/message/").content.decode()
    assert ">bill_issued<" not in body
    ar = client.get("/ar/admin/notifications/message/").content.decode()
    assert "إصدار فاتورة" in ar  # the event, in the list and in its filter
    assert "قيد الانتظار" in ar  # its status
    assert ">bill_issued<" not in ar


@pytest.mark.parametrize(("language", "scope", "agency"), [("fr", "Périmètre", "agence"), ("ar", "النطاق", "الوكالة")])
def test_a_bill_runs_scope_is_titled_in_the_clerks_language(
    client: Client, superuser: User, subscriber, language: str, scope: str, agency: str
) -> None:
    run = bill_run_start(
        period=dt.date(2026, 10, 1), agency=subscriber.agency, billing_cycle=None, created_by=superuser
    )
    client.force_login(superuser)
    for url in (f"/{language}/admin/billing/billrun/", f"/{language}/admin/billing/billrun/{run.pk}/change/"):
        body = client.get(url).content.decode()
        assert scope in body and "Scope" not in body
        assert f"{agency} {subscriber.agency.code}" in body


@pytest.mark.parametrize(("language", "morning"), [("fr", "Matin"), ("ar", "صباحا")])
def test_the_time_of_day_a_subscriber_asks_for_is_in_the_clerks_language(
    client: Client, supervisor: User, subscriber, language: str, morning: str
) -> None:
    today = timezone.localdate()
    visit = appointment_schedule(
        account=ServiceAccountFactory(subscriber=subscriber), kind=Appointment.Kind.METER_CHANGE,
        date=today + dt.timedelta(days=5), window_start=dt.time(8), window_end=dt.time(12), scheduled_by=supervisor,
    )  # fmt: skip
    appointment_move_request(appointment=visit, preferred_date=today + dt.timedelta(days=9), preferred_window="morning")
    client.force_login(supervisor)
    wish = f"{today + dt.timedelta(days=9):%d/%m/%Y} ({morning})"
    assert wish in client.get(f"/{language}/admin/billing/appointment/").content.decode()
    page = client.get(f"/{language}/admin/billing/appointment/{visit.pk}/change/").content.decode()
    assert morning in page and "morning" not in page
