"""The clerk's search finds the customer by every spelling the portal and the
README show (issue 10): the account number as displayed gives exactly that
account; a phone as said, with +216, 00216 or Arabic-Indic digits gives that
subscriber first (it used to come last of 14)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import SubscriberFactory
from billing.models import ServiceAccount
from billing.numbers import account_number_from_serial, format_account_number

from .factories import ServiceAccountFactory

pytestmark = pytest.mark.django_db

PHONE_SPELLINGS = ["20 000 001", "+216 20 000 001", "00216 20 000 001", "٢٠ ٠٠٠ ٠٠١", "20000001"]


@pytest.fixture
def accounts() -> list[ServiceAccount]:
    """14 subscribers whose phones and account numbers share digits: +21620000001…14."""
    made = []
    for i in range(1, 15):
        subscriber = SubscriberFactory(user__phone=f"+2162000{i:04d}", user__email=f"s{i}@example.com")
        made.append(ServiceAccountFactory(subscriber=subscriber, number=account_number_from_serial(i)))
    return made


def _search(client: Client, model: str, term: str) -> list:
    response = client.get(reverse(f"admin:{model}_changelist"), {"q": term})
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize("term", PHONE_SPELLINGS)
def test_a_phone_as_said_finds_that_subscriber_first(client: Client, superuser: User, accounts, term: str) -> None:
    client.force_login(superuser)
    wanted = accounts[0].subscriber
    for model, row_subscriber in (
        ("accounts_subscriber", lambda row: row),
        ("billing_serviceaccount", lambda row: row.subscriber),
        ("accounts_user", lambda row: row.subscriber),
    ):
        found = _search(client, model, term)
        assert found, f"{model}: nothing for {term!r}"
        assert row_subscriber(found[0]) == wanted, f"{model}: {term!r} gave {found}"


def test_the_account_number_as_displayed_finds_exactly_that_account(client: Client, superuser: User, accounts) -> None:
    client.force_login(superuser)
    account = accounts[0]
    displayed = format_account_number(account.number)
    assert " " in displayed
    assert _search(client, "billing_serviceaccount", displayed) == [account]
    assert [b.pk for b in _search(client, "accounts_subscriber", displayed)] == [account.subscriber.pk]


def test_other_searches_still_work(client: Client, superuser: User, accounts) -> None:
    client.force_login(superuser)
    assert _search(client, "accounts_subscriber", "s3@example.com") == [accounts[2].subscriber]
