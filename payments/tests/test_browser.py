"""The demo subscriber pays a bill through the sandbox bank, and another through
the Konnect wallet checkout (the fake gateway on loopback), in chromium; the
dashboard shows the new amount due at once (whatever the page cache does)."""

from __future__ import annotations

from typing import Any

import pytest

from billing.demo import DEMO_SUBSCRIBER_EMAIL
from billing.models import Bill
from billing.tests.browser import (
    Demo,
    login,
    text,
)
from core.money import format_money
from payments.demo import KONNECT_NAME, konnect_provider_ensure, sandbox_provider_ensure
from payments.gateways.konnect_fake import KonnectFake
from payments.models import Payment, PaymentOrder
from payments.tests.test_konnect import API_KEY, WALLET_ID

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_subscriber_pays_a_bill_at_the_sandbox_bank(live_server, demo: Demo, new_page: Any, settings):
    settings.DEBUG = True
    sandbox_provider_ensure()
    account = next(a for a in demo.accounts.values() if demo.open_amount_due(a) > 0)
    bill = Bill.objects.filter(account=account, status__in=Bill.OPEN_STATUSES, amount_due__gt=0).earliest("due_date")
    before = demo.open_amount_due(account)
    page = new_page()
    login(page, live_server.url, "fr", DEMO_SUBSCRIBER_EMAIL)
    page.goto(f"{live_server.url}/fr/bills/{bill.number}/")
    with page.expect_navigation():
        page.get_by_test_id("pay-bill").click()
    with page.expect_navigation():
        page.click("button.primary[type=submit]")
    assert "/sandbox-bank/checkout/" in page.url
    with page.expect_navigation():
        page.click("button.pay")
    assert page.get_by_test_id("order-status").get_attribute("data-status") == "paid"
    assert Payment.objects.filter(account=account).count() == 1
    assert PaymentOrder.objects.get().status == PaymentOrder.Status.PAID
    page.goto(f"{live_server.url}/fr/dashboard/")
    card = page.locator("article.card.account").filter(has_text=account.display_number)
    expected = format_money(before - bill.amount_due, "TND", "fr")
    assert text(card.get_by_test_id("amount-due")) == expected


def test_demo_subscriber_pays_a_bill_through_the_konnect_wallet(live_server, demo: Demo, new_page: Any, settings):
    settings.DEBUG = True
    sandbox_provider_ensure()
    account = next(a for a in demo.accounts.values() if demo.open_amount_due(a) > 0)
    bill = Bill.objects.filter(account=account, status__in=Bill.OPEN_STATUSES, amount_due__gt=0).earliest("due_date")
    before = demo.open_amount_due(account)
    with KonnectFake(api_key=API_KEY, wallet_id=WALLET_ID) as gateway:
        settings.KONNECT_API_URL, settings.KONNECT_API_KEY, settings.KONNECT_WALLET_ID = gateway.url, API_KEY, WALLET_ID
        konnect = konnect_provider_ensure()
        page = new_page()
        login(page, live_server.url, "fr", DEMO_SUBSCRIBER_EMAIL)
        page.goto(f"{live_server.url}/fr/bills/{bill.number}/")
        with page.expect_navigation():
            page.get_by_test_id("pay-bill").click()
        page.get_by_label(KONNECT_NAME).check()
        with page.expect_navigation():
            page.click("button.primary[type=submit]")
        # at the wallet's page, the bill's amount in millimes' worth
        assert page.url.startswith(f"{gateway.url}/pay?payment_ref=")
        assert text(page.get_by_test_id("konnect-amount")) == f"{bill.amount_due:f} TND"
        with page.expect_navigation():
            page.get_by_test_id("konnect-pay").click()
        # back on Selfcare's result page, which asked Konnect itself
        assert page.url.startswith(f"{live_server.url}/fr/pay/orders/")
        assert page.get_by_test_id("order-status").get_attribute("data-status") == "paid"
        gateway.wait_webhooks()
        assert [status for _url, status in gateway.webhook_calls] == [200]
    order = PaymentOrder.objects.get(provider=konnect)
    assert order.status == PaymentOrder.Status.PAID
    assert Payment.objects.filter(account=account).count() == 1
    page.goto(f"{live_server.url}/fr/dashboard/")
    card = page.locator("article.card.account").filter(has_text=account.display_number)
    expected = format_money(before - bill.amount_due, "TND", "fr")
    assert text(card.get_by_test_id("amount-due")) == expected
