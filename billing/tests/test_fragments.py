"""Cached page parts: faster on a second view, never stale, never someone else's."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Bill, Consumption
from billing.services import bills_flag_overdue

from .factories import BillFactory, PlanFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


def _amount_due(html: str) -> list[str]:
    return [re.sub(r"\s", " ", a) for a in re.findall(r'data-testid="amount-due">([^<]*)<', html)]


@pytest.fixture
def alice_bill(subscriber) -> Bill:
    return BillFactory(account=ServiceAccountFactory(subscriber=subscriber), due_date=dt.date(2099, 1, 1))


def test_a_second_view_reads_the_cache_instead_of_the_bills(
    subscriber_client: Client, alice_bill, django_assert_max_num_queries
) -> None:
    first = subscriber_client.get(reverse("billing:dashboard")).content.decode()
    with django_assert_max_num_queries(2):  # session and user only
        second = subscriber_client.get(reverse("billing:dashboard")).content.decode()
    assert alice_bill.account.display_number in first and alice_bill.account.display_number in second
    assert _amount_due(first) == _amount_due(second) == ["59,500 DT"]


def test_a_paid_bill_shows_at_once(subscriber_client: Client, alice_bill, django_capture_on_commit_callbacks) -> None:
    assert _amount_due(subscriber_client.get(reverse("billing:dashboard")).content.decode()) == ["59,500 DT"]
    with django_capture_on_commit_callbacks(execute=True):
        alice_bill.set_amount_paid(Decimal("59.500"))
        alice_bill.save()
    assert _amount_due(subscriber_client.get(reverse("billing:dashboard")).content.decode()) == ["0,000 DT"]


def test_the_overdue_sweep_shows_at_once_despite_its_bulk_update(
    subscriber_client: Client, subscriber, django_capture_on_commit_callbacks
) -> None:
    bill = BillFactory(
        account=ServiceAccountFactory(subscriber=subscriber), period=dt.date(2019, 11, 1), due_date=dt.date(2020, 1, 1)
    )
    issued = {"status": "issued"}
    assert bill.number in subscriber_client.get(reverse("billing:bill_list"), issued).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        bills_flag_overdue()
    # The bill left "issued" for "overdue": the cached list must not still show it.
    assert bill.number not in subscriber_client.get(reverse("billing:bill_list"), issued).content.decode()


def test_new_consumption_shows_at_once(
    subscriber_client: Client, subscriber, django_capture_on_commit_callbacks
) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    url = reverse("billing:consumption", args=[account.number])
    assert 'class="bar"' not in subscriber_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        Consumption.objects.create(account=account, period=dt.date(2026, 10, 1), unit="kWh", quantity=321)
    assert subscriber_client.get(url).content.decode().count('class="bar"') == 1


def test_a_plan_edit_shows_on_every_subscribers_page(
    subscriber_client: Client, subscriber, django_capture_on_commit_callbacks
) -> None:
    plan = PlanFactory(name_fr="Ancien nom")
    ServiceAccountFactory(subscriber=subscriber, plan=plan)
    assert "Ancien nom" in subscriber_client.get(reverse("billing:dashboard")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        plan.name_fr = "Nouveau nom"
        plan.save()
    assert "Nouveau nom" in subscriber_client.get(reverse("billing:dashboard")).content.decode()


def test_bob_never_gets_alices_cached_pages(client: Client, subscriber, other_subscriber, alice_bill) -> None:
    client.force_login(subscriber.user)
    for url in (reverse("billing:dashboard"), reverse("billing:bill_list")):
        client.get(url)
    client.force_login(other_subscriber.user)
    for url in (reverse("billing:dashboard"), reverse("billing:bill_list")):
        assert alice_bill.account.display_number not in client.get(url).content.decode()
    consumption = reverse("billing:consumption", args=[alice_bill.account.number])
    assert client.get(consumption).status_code == 404


def test_each_language_and_filter_has_its_own_fragment(subscriber_client: Client, alice_bill) -> None:
    assert 'dir="rtl"' in subscriber_client.get("/ar/dashboard/").content.decode()
    french = subscriber_client.get("/fr/dashboard/").content.decode()
    assert "Montant dû" in french or "Montant" in french
    paid_only = subscriber_client.get(reverse("billing:bill_list"), {"status": "paid"}).content.decode()
    assert alice_bill.number not in paid_only
    assert alice_bill.number in subscriber_client.get(reverse("billing:bill_list")).content.decode()


def test_an_account_moved_to_bob_leaves_alices_pages_at_once(
    client: Client, subscriber, other_subscriber, alice_bill, django_capture_on_commit_callbacks
) -> None:
    account = alice_bill.account
    client.force_login(subscriber.user)
    consumption = reverse("billing:consumption", args=[account.number])
    assert client.get(consumption).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        account.subscriber = other_subscriber
        account.save()
    assert client.get(consumption).status_code == 404
    assert account.display_number not in client.get(reverse("billing:dashboard")).content.decode()
