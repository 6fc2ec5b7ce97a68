"""The back office's change pages show related data as a clerk reads it: people and
accounts by name and number (never a raw id), bill lines in words, amounts with
their currency in the clerk's language."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from billing.approvals import reading_correct
from billing.models import BillLine, PrintRequest, SmsAlertSubscription
from billing.tests.factories import BillFactory, ConsumptionFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _french() -> None:
    # Admin URLs are reversed in French (/fr/admin/…) whatever a previous test activated.
    translation.activate("fr")


def _text(html: str) -> str:
    """The page as read on screen: tags dropped, spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.replace("&nbsp;", " ").replace("\xa0", " ")))


@pytest.fixture
def bill(subscriber):
    account = ServiceAccountFactory(subscriber=subscriber, number="1000000016")
    bill = BillFactory(
        account=account, amount_lines=Decimal("72.100"), amount_tax=Decimal("13.699"),
        amount_total=Decimal("85.799"), amount_due=Decimal("85.799"),
    )  # fmt: skip
    bill.lines.create(position=1, kind=BillLine.Kind.FIXED_FEE, amount=Decimal("4.500"))
    bill.lines.create(
        position=2, kind=BillLine.Kind.CONSUMPTION, tier=2, quantity=Decimal("120"), unit="kWh",
        unit_price=Decimal("0.096"), amount=Decimal("11.520"),
    )  # fmt: skip
    return bill


def test_a_clerk_reads_the_bill_lines_in_words_and_the_amounts_with_their_currency(client: Client, clerk, bill) -> None:
    client.force_login(clerk)
    page = _text(client.get(reverse("admin:billing_bill_change", args=[bill.pk])).content.decode())
    assert "Consommation — tranche 2 : 120 kWh × 0,096 DT" in page
    assert "Redevance mensuelle" in page and "4,500 DT" in page and "11,520 DT" in page
    assert "Total : 85,799 DT" in page and "Montant dû : 85,799 DT" in page
    # Not the line's raw row ("266#2 11.520") nor its bare columns.
    assert f"{bill.pk}#" not in page and "0,096000" not in page


def test_the_bill_page_in_arabic_writes_amounts_the_arabic_way(client: Client, clerk, bill) -> None:
    client.force_login(clerk)
    url = reverse("admin:billing_bill_change", args=[bill.pk]).replace("/fr/", "/ar/", 1)
    page = _text(client.get(url).content.decode())
    assert "85,799 د.ت." in page  # CLDR ar_TN: comma decimals, the dinar's Arabic symbol
    assert "الشريحة 2" in page


def test_the_bills_list_shows_amounts_with_their_currency(client: Client, clerk, bill) -> None:
    client.force_login(clerk)
    page = _text(client.get(reverse("admin:billing_bill_changelist")).content.decode())
    assert "85,799 DT" in page


def test_a_clerk_reads_a_payment_and_its_allocations_with_their_currency(client: Client, clerk, bill) -> None:
    from payments.services import payment_apply
    from payments.tests.factories import ProviderFactory

    payment = payment_apply(
        provider=ProviderFactory(), reference="READ-1", account_number=bill.account.number, amount=Decimal("100"),
        currency="TND", paid_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    ).payment  # fmt: skip
    client.force_login(clerk)
    page = _text(client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode())
    assert "Montant : 100,000 DT" in page
    assert "Mis en avoir : 14,201 DT" in page
    assert f"{payment.receipt_number} → {bill.number}" in page and "85,799 DT" in page
    # The allocation row named its payment and bill by raw ids ("2 → 761: 85.799").
    assert f"{payment.pk} → {bill.pk}" not in page


def test_a_reading_correction_names_the_account_and_the_reading_not_their_ids(
    client: Client, supervisor, subscriber
) -> None:
    account = ServiceAccountFactory(subscriber=subscriber, number="1000000016")
    consumption = ConsumptionFactory(account=account)
    correction = reading_correct(
        consumption=consumption, quantity=Decimal("120"), meter_index=None, reason="Misread", corrected_by=supervisor
    )
    client.force_login(supervisor)
    page = _text(client.get(reverse("admin:billing_readingcorrection_change", args=[correction.pk])).content.decode())
    assert "Compte : 100 000 0016" in page
    assert "Relevé : 2026-01 · 120 kWh" in page
    assert "Corrigé par : supervisor@agency.example" in page
    # The rows' old names, by raw ids: "806 2026-01 120 kWh" and "19: 180 → 120". Matched
    # whole (not "19:", which a clock time on the page contains whenever the id is 19).
    assert not re.search(rf"(?<!\d){account.pk} 2026-01 ", page)
    assert not re.search(rf"(?<!\d){consumption.pk}: \d+ → 120", page)


def test_an_accounts_foreign_key_is_chosen_by_its_number_not_typed_as_an_id(
    client: Client, superuser, subscriber
) -> None:
    account = ServiceAccountFactory(subscriber=subscriber, number="1000000016")
    subscription = SmsAlertSubscription.objects.create(account=account, started_on=dt.date(2026, 9, 1))
    client.force_login(superuser)
    html = client.get(reverse("admin:billing_smsalertsubscription_change", args=[subscription.pk])).content.decode()
    # A raw-id box held the account's row id ("806") for the clerk to read.
    assert "vForeignKeyRawIdAdminField" not in html
    assert f'<option value="{account.pk}" selected>100 000 0016</option>' in html


def test_a_person_is_shown_by_e_mail_on_a_paper_copy_request(client: Client, clerk, bill, subscriber) -> None:
    request = PrintRequest.objects.create(bill=bill, agency=subscriber.agency, requested_by=subscriber.user)
    client.force_login(clerk)
    page = _text(client.get(reverse("admin:billing_printrequest_change", args=[request.pk])).content.decode())
    assert "Demandée par : alice@example.com" in page
    assert "Facture : " + bill.number in page
