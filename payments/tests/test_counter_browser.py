"""A clerk at the counter, in a real browser: finds the account with the admin's
search box, takes cash for its oldest bill and gets the receipt, which prints
alone (no back-office header or menu) and reads right to left in Arabic."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from billing.demo import DEMO_CLERK_EMAIL, DEMO_PASSWORD, DEMO_SUPERVISOR_EMAIL
from billing.models import Bill, ServiceAccount
from billing.tests.browser import (
    Demo,
    shot,
)
from payments.counter import counter_payment_record
from payments.models import CounterPayment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clerk_takes_cash_at_the_counter_and_prints_the_receipt(live_server: Any, demo: Demo, new_page: Any) -> None:
    account = (
        ServiceAccount.objects.filter(subscriber__agency__code="TUN-C", bills__status__in=Bill.OPEN_STATUSES)
        .filter(bills__amount_due__gt=0)
        .order_by("number")
        .first()
    )
    oldest = Bill.objects.filter(Bill.open_q(), account=account).order_by("due_date", "period", "pk").first()
    page = new_page()
    page.goto(f"{live_server.url}/fr/admin/")
    page.fill("input[name=username]", DEMO_CLERK_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")

    page.goto(f"{live_server.url}/fr/admin/payments/counterpayment/add/")
    page.click("#counter-find .select2-selection")
    page.fill(".select2-search__field", account.number)
    page.locator(".select2-results__option", has_text=account.display_number).first.click()
    with page.expect_navigation():
        page.click("#counter-find input[type=submit]")
    assert page.locator("#counter-open-bills").is_visible()
    page.check(f"input[name=bill][value='{oldest.pk}']")
    page.check("input[name=method][value=cash]")
    shot(page, "fr-counter-payment")
    with page.expect_navigation():
        page.click("#counterpayment_form input[type=submit]")

    counter = CounterPayment.objects.select_related("payment").get()
    assert counter.payment.amount == oldest.amount_due
    assert page.locator("#receipt-number").inner_text() == counter.payment.receipt_number
    assert page.locator("#counter-receipt-print").is_visible()  # the script showed the button
    page.emulate_media(media="print")
    assert page.locator("#counter-receipt").is_visible()
    for chrome in ("#header", ".breadcrumbs", ".counter-receipt-tools"):
        assert not page.locator(chrome).first.is_visible(), chrome
    shot(page, "fr-counter-receipt-print")

    page.emulate_media(media="screen")
    page.goto(f"{live_server.url}/ar/admin/payments/counterpayment/{counter.pk}/receipt/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    receipt = page.locator("#counter-receipt").bounding_box()
    content = page.locator("#content-main").bounding_box()
    # Right to left: the receipt hugs the right edge of the page's content.
    assert abs((receipt["x"] + receipt["width"]) - (content["x"] + content["width"])) < 2
    shot(page, "ar-counter-receipt")


def test_a_supervisor_imports_the_counters_day(live_server: Any, demo: Demo, new_page: Any) -> None:
    clerk = User.objects.get(email=DEMO_CLERK_EMAIL)
    account = ServiceAccount.objects.filter(subscriber__agency__code="TUN-C").order_by("number").first()
    paid = [
        counter_payment_record(clerk=clerk, account=account, amount=Decimal(amount), method="cash").payment
        for amount in ("10.000", "20.000")
    ]
    when = timezone.localtime(paid[0].paid_at).isoformat()
    day = f"reference;amount;currency;paid_at\n{paid[0].reference};10.000;TND;{when}\nTHEIRS-1;5.000;TND;{when}\n"

    page = new_page()
    page.goto(f"{live_server.url}/fr/admin/")
    page.fill("input[name=username]", DEMO_SUPERVISOR_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.goto(f"{live_server.url}/fr/admin/payments/settlementimport/add/")
    page.select_option("select[name=provider]", str(paid[0].provider_id))
    page.set_input_files(
        "input[name=file]", files=[{"name": "caisse.csv", "mimeType": "text/csv", "buffer": day.encode("utf-8-sig")}]
    )
    with page.expect_navigation():
        page.click("#settlementimport_form input[type=submit]")
    rows = page.locator("#settlement-outcomes tbody tr")
    assert rows.count() == 4
    assert page.locator("#settlement-outcomes .outcome-matched td").first.inner_text() == "1"
    assert page.locator("#settlement-outcomes .outcome-missing_ours td").first.inner_text() == "1"
    assert page.locator("#settlement-outcomes .outcome-missing_theirs td").first.inner_text() == "1"
    shot(page, "fr-settlement-result")
