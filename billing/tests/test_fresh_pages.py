"""Whatever writes the data, the next page view shows it.

The pages keep no HTML cache (README, "Page speed without an HTML cache"), so
there is nothing a writer could forget to invalidate. Each test loads the page
first, as a subscriber would, then writes the way one kind of writer does, then
loads it again: if anybody brings a cache back, these are the tests it must pass.
Redis is configured in the suite (sessions, the default cache), as in production.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Subscriber
from billing.models import Bill, Consumption, Plan, ServiceAccount, Unit

from .factories import BillFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("billing:dashboard")
BILLS = reverse("billing:bill_list")


@pytest.fixture
def account(subscriber: Subscriber) -> ServiceAccount:
    return ServiceAccountFactory(subscriber=subscriber)


@pytest.fixture
def bill(account: ServiceAccount) -> Bill:
    return BillFactory(account=account, amount_total=Decimal("83.250"), amount_lines=Decimal("69.958"),
                       amount_tax=Decimal("13.292"), amount_due=Decimal("83.250"))  # fmt: skip


def _amount_due(body: str) -> str:
    """The dashboard's "amount due" figure of the (only) account."""
    cell = body.split('data-testid="amount-due">', 1)[1].split("<", 1)[0]
    return cell.replace("\xa0", " ").replace("\u202f", " ")


def _digits(body: str) -> str:
    """The page with the thousands separators (narrow no-break spaces in French) taken out."""
    return body.replace("\u202f", "").replace("\xa0", "")


def _page(client: Client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, url
    return response.content.decode()


def test_a_model_save_shows(subscriber_client: Client, bill: Bill) -> None:
    assert _amount_due(_page(subscriber_client, DASHBOARD)) == "83,250 DT"
    bill.set_amount_paid(Decimal("80.000"))
    bill.save()
    assert _amount_due(_page(subscriber_client, DASHBOARD)) == "3,250 DT"


def test_a_queryset_update_shows(subscriber_client: Client, bill: Bill) -> None:
    assert "status-overdue" in _page(subscriber_client, BILLS)  # due in October, unpaid
    Bill.objects.filter(pk=bill.pk).update(amount_paid=bill.amount_total, amount_due=0, status=Bill.Status.PAID)
    body = _page(subscriber_client, BILLS)
    assert "status-paid" in body and "status-overdue" not in body
    assert _amount_due(_page(subscriber_client, DASHBOARD)) == "0,000 DT"


def test_a_bulk_create_shows(subscriber_client: Client, account: ServiceAccount, bill: Bill) -> None:
    consumption = reverse("billing:consumption", args=[account.number])
    assert "4321" not in _digits(_page(subscriber_client, consumption))
    assert f"{account.number}-202610" not in _page(subscriber_client, BILLS)
    Consumption.objects.bulk_create(
        [Consumption(account=account, period=dt.date(2026, 10, 1), unit=Unit.KWH, quantity=Decimal("4321"))]
    )
    Bill.objects.bulk_create([BillFactory.build(account=account, period=dt.date(2026, 10, 1))])
    assert "4321" in _digits(_page(subscriber_client, consumption))
    assert f"{account.number}-202610" in _page(subscriber_client, BILLS)


def test_an_admin_edit_shows(subscriber_client: Client, superuser, account: ServiceAccount) -> None:
    assert "Rue de la Kasbah" not in _page(subscriber_client, DASHBOARD)
    staff = Client()
    staff.force_login(superuser)
    url = reverse("admin:billing_serviceaccount_change", args=[account.pk])
    form = staff.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["service_address"] = "5 Rue de la Kasbah, Tunis"
    assert staff.post(url, data).status_code == 302
    assert "5 Rue de la Kasbah" in _page(subscriber_client, DASHBOARD)


def test_a_subscriber_rename_shows(subscriber_client: Client, subscriber: Subscriber, bill: Bill) -> None:
    assert "Alice Ben Salah" in _page(subscriber_client, DASHBOARD)
    Subscriber.objects.filter(pk=subscriber.pk).update(full_name="Alice Ben Salah-Gharbi")
    assert "Alice Ben Salah-Gharbi" in _page(subscriber_client, DASHBOARD)


def test_an_account_moved_to_another_subscriber_leaves_one_page_and_joins_the_other(
    subscriber_client: Client, account: ServiceAccount, bill: Bill, other_subscriber: Subscriber
) -> None:
    bob = Client()
    bob.force_login(other_subscriber.user)
    assert account.display_number in _page(subscriber_client, DASHBOARD)
    assert account.display_number not in _page(bob, DASHBOARD)
    ServiceAccount.objects.filter(pk=account.pk).update(subscriber=other_subscriber)
    assert account.display_number not in _page(subscriber_client, DASHBOARD)
    assert account.display_number not in _page(subscriber_client, BILLS)
    assert subscriber_client.get(reverse("billing:consumption", args=[account.number])).status_code == 404
    assert account.display_number in _page(bob, DASHBOARD) and bill.number in _page(bob, BILLS)


def test_a_plan_edit_shows(subscriber_client: Client, account: ServiceAccount) -> None:
    assert "Tarif Soleil" not in _page(subscriber_client, DASHBOARD)
    Plan.objects.filter(pk=account.plan_id).update(name_fr="Tarif Soleil")
    assert "Tarif Soleil" in _page(subscriber_client, DASHBOARD)
