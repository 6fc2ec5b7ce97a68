"""The sandbox bank end to end: its checkout page posts a signed payment over real
HTTP to a live Selfcare server, then the subscriber lands on the order's result."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client

from billing.models import Bill
from billing.tests.factories import BillFactory, ServiceAccountFactory
from payments import orders
from payments.demo import sandbox_provider_ensure
from payments.models import ApiInbox, Payment, PaymentOrder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def flow(live_server, settings, subscriber):
    settings.DEBUG = True
    settings.SANDBOX_BANK_SELFCARE_URL = live_server.url
    sandbox = sandbox_provider_ensure()
    account = ServiceAccountFactory(subscriber=subscriber)
    bills = [BillFactory(account=account, period=dt.date(2026, m, 1)) for m in (8, 9)]
    order = orders.order_create(subscriber=subscriber, account=account, provider=sandbox, bills=bills)
    return_url = f"{live_server.url}/fr/pay/orders/{order.reference}/"
    pay_url = orders.order_start(order=order, return_url=return_url)
    return order, bills, pay_url, return_url


def _bank_form(pay_url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(pay_url).query))


def test_paying_at_the_sandbox_bank_applies_the_order_once(flow, subscriber):
    order, bills, pay_url, return_url = flow
    bank = Client()  # the customer's browser at the bank's page
    page = bank.get(urlsplit(pay_url).path, _bank_form(pay_url))
    assert page.status_code == 200 and "119.000" in page.text
    # when: "Pay", twice (a double click, a reload)
    for _ in range(2):
        response = bank.post(urlsplit(pay_url).path, {**_bank_form(pay_url), "action": "pay"})
        assert response.status_code == 302 and response["Location"] == return_url
    # then: the bank's signed POSTs reached the live server over HTTP; one payment
    assert ApiInbox.objects.filter(provider=order.provider, path="/api/v1/payments").count() == 2
    assert Payment.objects.filter(reference=order.reference).count() == 1
    assert not Bill.objects.filter(pk__in=[b.pk for b in bills], amount_due__gt=0).exists()
    # and the result page, loaded twice, shows it paid without a second payment
    browser = Client()
    browser.force_login(subscriber.user)
    for _ in range(2):
        assert 'data-status="paid"' in browser.get(urlsplit(return_url).path).text
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID and order.payment.amount == Decimal("119.000")
    assert Payment.objects.count() == 1


def test_cancelling_at_the_sandbox_bank_applies_nothing(flow, subscriber):
    _order, _bills, pay_url, return_url = flow
    response = Client().post(urlsplit(pay_url).path, {**_bank_form(pay_url), "action": "cancel"})
    assert response["Location"] == return_url + "?outcome=cancelled"
    browser = Client()
    browser.force_login(subscriber.user)
    assert 'data-status="cancelled"' in browser.get(response["Location"]).text
    assert not Payment.objects.exists()


def test_the_sandbox_bank_returns_only_to_selfcare(flow):
    _order, _bills, pay_url, _return = flow
    form = {**_bank_form(pay_url), "return": "https://evil.example/phish"}
    assert Client().get(urlsplit(pay_url).path, form).status_code == 400
