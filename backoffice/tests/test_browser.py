"""A clerk at the counter, in a real browser: logs in to the back office, finds
the customer by the phone number as the customer says it, and reads their page.
Reuses the subscriber pages' browser fixtures (Debian's chromium via Playwright)."""

from __future__ import annotations

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db.models import Sum

from billing.demo import DEMO_CLERK_EMAIL, DEMO_PASSWORD
from billing.models import Bill
from billing.tests.browser import (
    Demo,
    path_of,
    shot,
    text,
)
from core.money import format_money

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clerk_finds_a_customer_by_phone_and_opens_their_page(live_server: Any, demo: Demo, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/fr/admin/")
    page.fill("input[name=username]", DEMO_CLERK_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert path_of(page) == "/fr/admin/"

    with page.expect_navigation():
        page.get_by_role("link", name="Client 360").first.click()
    page.fill("input[name=q]", "20 000 001")  # +21620000001 as the customer says it
    with page.expect_navigation():
        page.get_by_role("button", name="Rechercher").click()

    subscriber = demo.subscriber
    assert path_of(page) == f"/fr/admin/backoffice/customer/{subscriber.pk}/change/"
    assert text(page.locator("#h-subscriber")) == "Abonné"
    assert subscriber.full_name in text(page.locator(".customer-facts"))
    owed = Bill.objects.filter(Bill.open_q(), account__subscriber=subscriber).aggregate(s=Sum("amount_due"))["s"]
    assert text(page.locator(".customer-balance")) == format_money(owed, "TND", "fr")
    for account in demo.accounts.values():
        assert page.get_by_text(account.display_number, exact=True).count() == 1
    # The stylesheet came through (a static file: no inline style for the CSP).
    assert page.evaluate("getComputedStyle(document.querySelector('.customer-facts')).display") == "grid"
    shot(page, "fr-backoffice-customer-360")
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_id=subscriber.pk).count() == 1
