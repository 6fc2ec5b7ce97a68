"""The field team's orders in the back office (billing/dunning_admin.py): a clerk
prints the disconnection and reconnection sheets of their agency, then marks
each order carried out; every step changes the order's state through the
dunning services and leaves an audit entry naming the clerk."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import ChannelKind
from billing.dunning import dunning_account_settle, dunning_run, field_order_cancel
from billing.models import Bill, FieldOrder, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.money import format_money
from notifications.tests.factories import VerifiedChannelFactory

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 11, 20)


def day(offset: int) -> dt.date:
    return DUE + dt.timedelta(days=offset)


@pytest.fixture
def account(subscriber) -> ServiceAccount:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="fr")
    return ServiceAccountFactory(
        subscriber=subscriber, meter_number="STEG-0042-77", service_address="14 rue Ibn Khaldoun, Sfax"
    )


@pytest.fixture
def bill(account) -> Bill:
    return BillFactory(account=account, period=dt.date(2026, 10, 1), issue_date=dt.date(2026, 10, 31), due_date=DUE)


@pytest.fixture
def disconnection(account, bill) -> FieldOrder:
    """The ladder's order at 30 days overdue, waiting to be printed."""
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    return FieldOrder.objects.get(account=account, kind=FieldOrder.Kind.DISCONNECTION)


def act(client: Client, action: str, *orders: FieldOrder):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("admin:billing_fieldorder_changelist"),
        {"action": action, "_selected_action": [o.pk for o in orders]},
        REMOTE_ADDR="10.1.2.3",
    )


def sheet_text(response) -> str:  # type: ignore[no-untyped-def]
    """The printed page as a reader sees it: tags out, spaces collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def entries(order: FieldOrder) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(order).order_by("pk"))


def test_a_clerk_prints_the_disconnection_sheet_and_the_order_is_marked_printed(
    client: Client, clerk, subscriber, account, disconnection
) -> None:
    client.force_login(clerk)

    with translation.override("fr"):
        response = act(client, "print_sheets", disconnection)

    # the sheet: what the field team needs at the door, in the clerk's language
    assert response.status_code == 200
    assert response.templates[0].name == "admin/billing/fieldorder/print.html"
    text = sheet_text(response)
    assert f"Ordre de coupure #{disconnection.pk}" in text
    assert f"Agence {subscriber.agency}" in text
    assert f"Ordonné le {day(30):%d/%m/%Y}" in text
    assert f"Numéro de compte {account.display_number}" in text
    assert "Client Alice Ben Salah" in text
    assert "14 rue Ibn Khaldoun, Sfax" in text and "STEG-0042-77" in text
    assert f"Impayé depuis {DUE:%d/%m/%Y}" in text  # the unpaid bill's due date
    assert "Technician's signature" not in text and "Signature du technicien" in text
    # one sheet: one order
    assert text.count("Ordre de coupure") == 1 and "Ordre de rétablissement" not in text

    # the order is printed, by whom and when, and the trail says so
    disconnection.refresh_from_db()
    assert (disconnection.status, disconnection.printed_by) == (FieldOrder.Status.PRINTED, clerk)
    assert disconnection.printed_at is not None and disconnection.closed_at is None
    printed, action = entries(disconnection)[-2:]
    assert (printed.changes, printed.actor) == ({"status": ["to_print", "printed"]}, clerk)
    assert (action.additional_data["admin_action"], action.actor, action.remote_addr) == (
        "print_sheets", clerk, "10.1.2.3",
    )  # fmt: skip
    assert action.additional_data["agency_id"] == subscriber.agency_id


def test_printing_again_gives_the_sheet_but_keeps_the_first_printing(client: Client, clerk, disconnection) -> None:
    client.force_login(clerk)
    act(client, "print_sheets", disconnection)
    disconnection.refresh_from_db()
    first = disconnection.printed_at

    again = act(client, "print_sheets", disconnection)

    assert again.status_code == 200 and f"#{disconnection.pk}" in sheet_text(again)
    disconnection.refresh_from_db()
    assert (disconnection.status, disconnection.printed_at) == (FieldOrder.Status.PRINTED, first)
    assert [e.changes for e in entries(disconnection)].count({"status": ["to_print", "printed"]}) == 1


def test_marking_the_disconnection_carried_out_disconnects_the_account_with_an_audit_trail(
    client: Client, clerk, account, disconnection
) -> None:
    client.force_login(clerk)
    act(client, "print_sheets", disconnection)

    with translation.override("fr"):
        response = act(client, "mark_executed", disconnection)

    assert response.status_code == 302
    assert "1 ordre exécuté." in client.get(response["Location"]).content.decode()
    disconnection.refresh_from_db()
    assert (disconnection.status, disconnection.closed_by) == (FieldOrder.Status.EXECUTED, clerk)
    assert disconnection.closed_at is not None
    account.refresh_from_db()
    assert account.status == ServiceAccount.Status.DISCONNECTED
    # the order's trail: printed, carried out (by the service), then the action itself
    changes = [(e.changes, e.additional_data.get("admin_action"), e.actor) for e in entries(disconnection)]
    assert changes[-2:] == [
        ({"status": ["printed", "executed"]}, None, clerk),
        ({}, "mark_executed", clerk),
    ]
    # and the account's: its status, changed by the clerk
    account_entry = LogEntry.objects.get_for_object(account).latest("pk")
    assert (account_entry.changes["status"], account_entry.actor) == (["active", "disconnected"], clerk)


def test_an_order_carried_out_already_is_not_carried_out_twice(client: Client, clerk, disconnection) -> None:
    client.force_login(clerk)
    act(client, "mark_executed", disconnection)
    disconnection.refresh_from_db()
    closed_at = disconnection.closed_at

    with translation.override("en"):
        response = act(client, "mark_executed", disconnection)

    assert "0 orders carried out." in client.get(response["Location"]).content.decode()
    disconnection.refresh_from_db()
    assert (disconnection.status, disconnection.closed_at) == (FieldOrder.Status.EXECUTED, closed_at)
    assert [e.changes for e in entries(disconnection)].count({"status": ["to_print", "executed"]}) == 1


def test_after_payment_the_reconnection_sheet_is_printed_and_carried_out(
    client: Client, clerk, account, bill, disconnection
) -> None:
    client.force_login(clerk)
    act(client, "print_sheets", disconnection)
    act(client, "mark_executed", disconnection)
    # the subscriber pays everything overdue: the ladder orders the reconnection
    bill.set_amount_paid(bill.amount_total)
    bill.save()
    dunning_account_settle(account=account, today=day(33))
    reconnection = FieldOrder.objects.get(account=account, kind=FieldOrder.Kind.RECONNECTION)

    with translation.override("fr"):
        response = act(client, "print_sheets", reconnection)

    text = sheet_text(response)
    assert f"Ordre de rétablissement #{reconnection.pk}" in text
    assert f"Coupé par l'ordre #{disconnection.pk}" in text
    assert "Le montant en retard est payé : rétablissez le service aujourd'hui." in text
    assert "Impayé depuis" not in text
    reconnection.refresh_from_db()
    assert reconnection.status == FieldOrder.Status.PRINTED

    act(client, "mark_executed", reconnection)

    reconnection.refresh_from_db()
    account.refresh_from_db()
    assert (reconnection.status, account.status) == (FieldOrder.Status.EXECUTED, ServiceAccount.Status.ACTIVE)
    assert LogEntry.objects.get_for_object(account).latest("pk").changes["status"] == ["disconnected", "active"]


def test_the_sheets_of_several_orders_come_one_a_page_and_cancelled_ones_are_left_out(
    client: Client, clerk, subscriber, disconnection
) -> None:
    other_account = ServiceAccountFactory(subscriber=subscriber, service_address="3 avenue de Carthage, Sfax")
    BillFactory(account=other_account, period=dt.date(2026, 10, 1), issue_date=dt.date(2026, 10, 31), due_date=DUE)
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    second = FieldOrder.objects.get(account=other_account)
    client.force_login(clerk)

    both = act(client, "print_sheets", disconnection, second)

    assert both.content.decode().count('class="sheet"') == 2
    # a cancelled order is not sent to the field
    field_order_cancel(order=second, by=clerk, note="Paid at the counter this morning")
    only_one = act(client, "print_sheets", disconnection, second)
    assert only_one.content.decode().count('class="sheet"') == 1
    assert "3 avenue de Carthage" not in sheet_text(only_one)


def test_a_clerk_of_another_agency_neither_prints_nor_carries_out(
    client: Client, other_agency_clerk, account, disconnection
) -> None:
    client.force_login(other_agency_clerk)

    printed = act(client, "print_sheets", disconnection)
    executed = act(client, "mark_executed", disconnection)

    assert account.service_address not in printed.content.decode()
    assert executed.status_code in (200, 302)
    disconnection.refresh_from_db()
    account.refresh_from_db()
    assert (disconnection.status, disconnection.printed_by, disconnection.closed_by) == (
        FieldOrder.Status.TO_PRINT, None, None,
    )  # fmt: skip
    assert account.status == ServiceAccount.Status.ACTIVE
    assert not LogEntry.objects.get_for_object(disconnection).filter(actor=other_agency_clerk).exists()


def test_an_auditor_reads_the_orders_but_has_no_action(client: Client, auditor, disconnection) -> None:
    client.force_login(auditor)
    act(client, "mark_executed", disconnection)
    act(client, "print_sheets", disconnection)
    disconnection.refresh_from_db()
    assert disconnection.status == FieldOrder.Status.TO_PRINT


def test_the_arabic_sheet_keeps_each_value_beside_its_label_and_a_french_address_in_order(
    client: Client, clerk, account, disconnection
) -> None:
    """On the right-to-left sheet a value set left to right as a block (the date, the
    account, the meter) stood at the far left of the page, away from its label, and a
    French address came out as "rue Ibn Khaldoun, Sfax 14". Each value is an inline
    isolate: beside its label, in its own direction."""
    client.force_login(clerk)
    with translation.override("ar"):
        page = act(client, "print_sheets", disconnection).content.decode()
    assert 'dir="rtl"' in page
    assert '<dd class="number">' not in page
    assert f'<dd><bdi class="number">{account.display_number}</bdi></dd>' in page
    assert f'<dd><bdi class="number">{day(30):%d/%m/%Y}</bdi></dd>' in page
    assert "<dd><bdi>14 rue Ibn Khaldoun, Sfax</bdi></dd>" in page


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_the_overdue_list_groups_account_numbers_and_names_the_agency_in_the_clerks_language(
    client: Client, supervisor, subscriber, account, language: str
) -> None:
    today = timezone.localdate()
    BillFactory(account=account, period=dt.date(2026, 1, 1), due_date=today - dt.timedelta(days=12))
    agency = subscriber.agency
    client.force_login(supervisor)
    page = client.get(f"/{language}/admin/billing/overdueaccount/").content.decode()
    assert account.display_number != account.number
    assert f">{account.display_number}<" in page and f">{account.number}<" not in page
    name, other = (agency.name_ar, agency.name_fr) if language == "ar" else (agency.name_fr, agency.name_ar)
    assert f"{agency.code} {name}" in page and other not in page


def test_the_disconnection_sheet_gives_the_overdue_amount_and_bills_in_one_query(
    client: Client, clerk, subscriber, account, bill, disconnection, monkeypatch
) -> None:
    """The technician checks the subscriber's receipt against what is owed: the sheet
    says how much, with its currency, and which bills; a bill not yet due is not owed."""
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: day(31))
    older = BillFactory(
        account=account,
        period=dt.date(2026, 9, 1),
        due_date=day(-30),
        amount_lines="30.500",
        amount_total="40.000",
        amount_due="40.000",
    )
    not_due = BillFactory(account=account, period=dt.date(2026, 11, 1), due_date=day(40))
    client.force_login(clerk)
    with translation.override("fr"):
        response = act(client, "print_sheets", disconnection)
        owed = re.sub(r"\s+", " ", format_money(bill.amount_due + Decimal(older.amount_due), "TND"))
    text = sheet_text(response)
    assert owed.startswith("99,500")
    assert f"Montant en retard {owed}" in text and f"Factures en retard {older.number}" in text
    assert f'{older.number}</bdi>, <bdi class="number">{bill.number}</bdi>' in response.content.decode()
    assert not_due.number not in text

    with translation.override("ar"):
        text = sheet_text(act(client, "print_sheets", disconnection))
    assert "الفواتير المتأخرة" in text and re.sub(r"\s+", " ", format_money(Decimal("99.5"), "TND", "ar")) in text

    # A second order adds no query: the bills of every sheet come in one.
    other_account = ServiceAccountFactory(subscriber=subscriber)
    BillFactory(account=other_account, period=dt.date(2026, 10, 1), due_date=DUE)
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    second = FieldOrder.objects.get(account=other_account)
    FieldOrder.objects.filter(pk__in=[disconnection.pk, second.pk]).update(status=FieldOrder.Status.TO_PRINT)
    with CaptureQueriesContext(connection) as one:
        act(client, "print_sheets", disconnection)
    with CaptureQueriesContext(connection) as two:
        act(client, "print_sheets", disconnection, second)
    assert len([q for q in two if "billing_bill" in q["sql"]]) == len([q for q in one if "billing_bill" in q["sql"]])
