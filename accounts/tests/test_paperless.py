"""Paperless roll-out per agency: one rule decides who gets paper, everywhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Agency, ChannelKind, ContactChannel, Subscriber
from accounts.selectors import subscriber_is_paperless, subscriber_paper_bills
from billing.models import PrintRequest
from billing.services import print_requests_mark_printed
from billing.tests.factories import BillFactory, ServiceAccountFactory

from .factories import AgencyFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)


def _channel(subscriber: Subscriber, *, verified: bool) -> ContactChannel:
    return ContactChannel.objects.create(
        subscriber=subscriber,
        kind=ChannelKind.SMS,
        address=subscriber.user.phone,
        language="fr",
        verified_at=timezone.now() if verified else None,
    )


@pytest.mark.parametrize(
    ("chosen", "agency_from", "channel", "paperless"),
    [
        (False, None, "verified", False),  # nothing asked, nothing rolled out: paper
        (True, None, "verified", True),  # her own choice
        (False, TODAY, "verified", True),  # her agency stops paper today
        (False, TODAY - dt.timedelta(days=90), "verified", True),
        (False, TODAY + dt.timedelta(days=1), "verified", False),  # not yet
        (False, TODAY, "unverified", False),  # nowhere to send an e-bill: paper stays
        (False, TODAY, None, False),
        (True, None, "unverified", False),  # chose it, then her only channel lost its proof
        (True, TODAY, None, False),
    ],
)
def test_who_gets_no_paper_bill(chosen: bool, agency_from: dt.date | None, channel: str | None, paperless: bool):
    subscriber = SubscriberFactory(paperless=chosen, agency=AgencyFactory(paperless_from=agency_from))
    if channel:
        _channel(subscriber, verified=channel == "verified")
    assert subscriber_is_paperless(subscriber_id=subscriber.pk, today=TODAY) is paperless


@pytest.fixture
def rolled_out(subscriber: Subscriber) -> Agency:
    agency = subscriber.agency
    agency.paperless_from = timezone.localdate() - dt.timedelta(days=30)
    agency.save()
    return agency


def _bill_page(client: Client, subscriber: Subscriber) -> str:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(subscriber.user)
    return client.get(reverse("billing:bill_detail", args=[bill.number])).content.decode()


def test_the_bill_page_offers_a_paper_copy_once_her_agency_stopped_paper(client: Client, subscriber, rolled_out):
    _channel(subscriber, verified=True)
    assert not subscriber.paperless  # she never chose it herself
    assert "/paper-copy/" in _bill_page(client, subscriber)


def test_without_a_verified_channel_she_keeps_paper_and_no_copy_button(client: Client, subscriber, rolled_out):
    _channel(subscriber, verified=False)
    assert "/paper-copy/" not in _bill_page(client, subscriber)


def test_the_contact_page_says_her_agency_stopped_paper_and_offers_no_way_back(
    client: Client, subscriber, rolled_out
) -> None:
    _channel(subscriber, verified=True)
    client.force_login(subscriber.user)
    html = client.get("/fr/contact/").content.decode()
    assert "Votre agence n’imprime plus les factures depuis le" in html
    assert html.count("<h2>Factures papier</h2>") == 1 and html.count("</html>") == 1  # one section, one page
    # Paper only on request (a copy per bill), not by switching back.
    assert 'name="paperless" value="0"' not in html and 'name="paperless" value="1"' not in html


def test_the_contact_page_tells_her_to_verify_a_channel_when_her_agency_stopped_paper(
    client: Client, subscriber, rolled_out
) -> None:
    client.force_login(subscriber.user)
    html = client.get("/fr/contact/").content.decode()
    assert "Vérifiez un numéro ou une adresse pour recevoir la facture électronique" in html


def test_the_contact_page_announces_a_roll_out_to_come(client: Client, subscriber) -> None:
    subscriber.agency.paperless_from = timezone.localdate() + dt.timedelta(days=10)
    subscriber.agency.save()
    client.force_login(subscriber.user)
    html = client.get("/fr/contact/").content.decode()
    assert "Votre agence cessera d’imprimer les factures le" in html
    assert 'name="paperless" value="1"' in html  # she may still choose e-bills before


def test_paper_bills_reports_the_reason(subscriber, rolled_out) -> None:
    _channel(subscriber, verified=True)
    paper = subscriber_paper_bills(subscriber_id=subscriber.pk)
    assert paper.paperless and paper.agency_rolled_out and not paper.chosen and paper.has_verified_channel


def test_the_back_office_filters_subscribers_by_the_same_rule(client: Client, superuser) -> None:
    rolled = AgencyFactory(paperless_from=timezone.localdate())
    by_agency = SubscriberFactory(full_name="Par agence", agency=rolled)
    _channel(by_agency, verified=True)
    stays_paper = SubscriberFactory(full_name="Sans canal", agency=rolled)
    by_choice = SubscriberFactory(full_name="Par choix", paperless=True)
    _channel(by_choice, verified=True)
    plain = SubscriberFactory(full_name="Papier simple")  # an agency with no roll-out date
    client.force_login(superuser)
    url = reverse("admin:accounts_subscriber_changelist")
    e_bills = client.get(url, {"bills": "e"}).context["cl"].result_list
    paper = client.get(url, {"bills": "paper"}).context["cl"].result_list
    assert {s.pk for s in e_bills} == {by_agency.pk, by_choice.pk}
    assert {s.pk for s in paper} == {stays_paper.pk, plain.pk}


def test_after_asking_for_a_paper_copy_the_bill_says_where_it_stands_not_the_button_again(
    client: Client, subscriber, rolled_out, clerk
):
    """Issue 10: requested, then ready at the agency, instead of the same button."""
    _channel(subscriber, verified=True)
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(subscriber.user)
    page = reverse("billing:bill_detail", args=[bill.number])
    assert "/paper-copy/" in client.get(page).content.decode()

    client.post(reverse("billing:bill_paper_copy", args=[bill.number]))
    body = client.get(page).content.decode()
    assert "/paper-copy/" not in body
    assert 'data-testid="paper-copy"' in body
    assert "Copie papier demandée le" in body and subscriber.agency.name in body

    print_requests_mark_printed(requests=PrintRequest.objects.filter(bill=bill), printed_by=clerk)
    body = client.get(page).content.decode()
    assert "/paper-copy/" not in body
    assert "Votre copie papier vous attend à" in body and subscriber.agency.name in body
