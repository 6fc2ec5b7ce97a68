"""The back office speaks the clerk's language (issue 10): Django's "Change"
links are not the consumption table's "Évolution"/"التغيّر", the index title is
translated, and the outbox names events and statuses, not identifiers."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ChannelKind, User
from billing.messages import bill_announce
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
