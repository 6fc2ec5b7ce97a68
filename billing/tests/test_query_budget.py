"""Pages cost a fixed number of queries, however long the history."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.demo import history_build, history_save, plans_ensure
from billing.models import ServiceAccount, ServiceKind

from .factories import ServiceAccountFactory

pytestmark = pytest.mark.django_db

# Session, user, subscriber and the page's own reads: a ceiling, not a target.
# The dashboard's third read is the technician visits to come (one indexed query).
BUDGET = {"dashboard": 3, "bill_list": 3, "consumption": 2, "plan": 6, "bill_detail": 5}


def _history(subscriber, months: int) -> list[ServiceAccount]:
    plans = plans_ensure()
    by_kind = {p.kind: p for p in plans.values() if p.is_active}
    accounts = [
        ServiceAccountFactory(subscriber=subscriber, kind=kind, plan=by_kind[kind])
        for kind in (ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.MOBILE)
    ]
    history_save(
        *history_build(
            accounts=accounts, plans={p.pk: p for p in plans.values()}, months=months,
            today=timezone.localdate(), rng=random.Random(7),
        )
    )  # fmt: skip
    return accounts


def _urls(accounts: list[ServiceAccount]) -> dict[str, str]:
    account = accounts[0]
    bill = account.bills.order_by("-period").first()
    return {
        "dashboard": reverse("billing:dashboard"),
        "bill_list": reverse("billing:bill_list") + f"?account={account.number}&page=2",
        "consumption": reverse("billing:consumption", args=[account.number]),
        "plan": reverse("billing:plan", args=[account.number]),
        "bill_detail": reverse("billing:bill_detail", args=[bill.number]),
    }


@pytest.mark.parametrize("page", list(BUDGET))
def test_ten_years_of_history_costs_no_more_queries_than_one(
    page: str, client: Client, subscriber, other_subscriber, django_assert_max_num_queries
) -> None:
    # given Alice with 10 years on 3 accounts and Bob with 1 year
    long_url = _urls(_history(subscriber, months=120))[page]
    short_url = _urls(_history(other_subscriber, months=13))[page]

    client.force_login(other_subscriber.user)
    with django_assert_max_num_queries(BUDGET[page]) as short:
        assert client.get(short_url).status_code == 200

    client.force_login(subscriber.user)
    with django_assert_max_num_queries(BUDGET[page]) as long:
        assert client.get(long_url).status_code == 200

    # then history changes nothing in the number of queries
    assert len(long.captured_queries) == len(short.captured_queries)


def test_the_dashboard_reads_accounts_in_one_query(subscriber, django_assert_num_queries) -> None:
    from billing.selectors import account_list_for_dashboard

    _history(subscriber, months=24)
    with django_assert_num_queries(1):
        rows = list(account_list_for_dashboard(subscriber_id=subscriber.pk, today=dt.date(2026, 11, 21)))
    assert len(rows) == 3 and all(row.last_bill_number for row in rows)
