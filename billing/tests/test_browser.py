"""The subscriber pages as a person sees them: Playwright driving Debian's chromium.

The demo subscriber logs in (by phone in Arabic, by e-mail in French), opens the
dashboard, a bill and the consumption chart, and the test checks what is on the
screen against the database: the direction of the page, the amounts due in the
page's own number format, the chart and its 24 bars. Full-page screenshots go to
`test-artifacts/screenshots/` (one per language per page, `ar-dashboard.png`,
`ar-dashboard-mobile.png` for a 360x740 phone).

Nothing here is skipped: without /usr/bin/chromium (`make test` installs it with
scripts/ensure-chromium.sh) or without Playwright the browser fixture errors out
with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy
from pypdf import PdfReader

from accounts.forms import LoginForm
from billing.demo import DEMO_SUBSCRIBER_EMAIL
from billing.models import ServiceKind
from core.money import format_money

from .browser import (
    CHART_MONTHS,
    PHONE,
    PHONE_NATIONAL,
    Demo,
    assert_direction,
    assert_no_sideways_scroll,
    click_menu,
    login,
    path_of,
    shot,
    text,
    translated,
    wait_for_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def check_dashboard(page: Any, demo: Demo, language: str, rtl: bool) -> None:
    wait_for_path(page, f"/{language}/dashboard/")
    assert_direction(page, language, rtl)
    # Greeted in the page's script: "محمد بن سالم" in Arabic, "Mohamed Ben Salem" otherwise.
    assert demo.subscriber.name_in(language) in text(page.locator("h1"))
    # The words are the page's language, not English left untranslated (a missing
    # or stale compiled catalogue would show "Amount due" on the Arabic page).
    amount_label = translated(gettext_lazy("Amount due"), language)
    assert amount_label != "Amount due", f"no {language} translation of 'Amount due': is locale/ compiled?"

    cards = page.locator("article.card.account")
    assert cards.count() == len(demo.accounts) == 4
    for account in demo.accounts.values():
        card = cards.filter(has_text=account.display_number)
        assert card.count() == 1, f"no card for account {account.display_number}"
        with translation.override(language):
            kind = str(account.get_kind_display())
        assert text(card.locator("h2")) == kind
        assert text(card.locator("dl.figures dt").first) == amount_label
        expected = format_money(demo.open_amount_due(account), "TND", language)
        assert text(card.get_by_test_id("amount-due")) == expected
        assert card.get_by_test_id("amount-due").is_visible()

    # Exactly one overdue bill, on the electricity account: the red alert and the
    # marked card.
    alert = page.locator(".alert[role=alert]")
    assert alert.is_visible()
    assert alert.locator("a[href*='status=overdue']").is_visible()
    electricity = cards.filter(has_text=demo.accounts[ServiceKind.ELECTRICITY].display_number)
    assert "is-overdue" in (electricity.get_attribute("class") or "")
    assert cards.locator(".warning").count() == 1
    assert electricity.locator(".warning").is_visible()
    # The amounts are written the page's way: "DT" in French, "د.ت." in Arabic.
    amount = text(electricity.get_by_test_id("amount-due"))
    assert ("د.ت." in amount) if language == "ar" else amount.endswith("DT")


def open_last_bill(page: Any, demo: Demo, language: str, rtl: bool) -> None:
    account = demo.accounts[ServiceKind.ELECTRICITY]
    bill = demo.last_bill(account)
    card = page.locator("article.card.account").filter(has_text=account.display_number)
    card.locator(f"a[href='/{language}/bills/{bill.number}/']").click()
    wait_for_path(page, f"/{language}/bills/{bill.number}/")
    assert_direction(page, language, rtl)
    assert bill.number in text(page.locator("article.card .muted").first)
    amount_due = page.get_by_test_id("amount-due")
    assert amount_due.is_visible()
    assert text(amount_due) == format_money(bill.amount_due, "TND", language)
    assert bill.amount_due > 0  # the latest electricity bill is unpaid in the demo
    # The foot of the table repeats the amount due in bold.
    assert text(page.locator("tfoot tr.strong td.num")) == format_money(bill.amount_due, "TND", language)
    assert page.locator("tbody tr").count() >= 1


def open_consumption(page: Any, demo: Demo, language: str, rtl: bool) -> None:
    account = demo.accounts[ServiceKind.ELECTRICITY]
    click_menu(page, f"/{language}/dashboard/")
    wait_for_path(page, f"/{language}/dashboard/")
    card = page.locator("article.card.account").filter(has_text=account.display_number)
    card.locator(f"nav.actions a[href='/{language}/accounts/{account.number}/consumption/']").click()
    wait_for_path(page, f"/{language}/accounts/{account.number}/consumption/")
    assert_direction(page, language, rtl)

    chart = page.locator("svg[data-testid=consumption-chart]")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 60, f"the chart is {box}"
    bars = chart.locator("rect.bar")
    assert bars.count() == CHART_MONTHS
    heights = bars.evaluate_all("rects => rects.map(r => r.getBoundingClientRect().height)")
    assert all(h > 0 for h in heights), f"bars without height: {heights}"
    # Months run in the reading direction: the oldest bar (first) at the start.
    oldest, newest = bars.first.bounding_box(), bars.last.bounding_box()
    assert oldest and newest
    if rtl:
        assert oldest["x"] > newest["x"], "Arabic chart should run right to left"
    else:
        assert oldest["x"] < newest["x"], "French chart should run left to right"
    # Every bar stays inside the chart's box.
    for bar_box in (oldest, newest):
        assert box["x"] - 1 <= bar_box["x"] and bar_box["x"] + bar_box["width"] <= box["x"] + box["width"] + 1

    rows = page.locator("table.table tbody tr")
    assert rows.count() == CHART_MONTHS
    # The table's first column (the period) is at the reading start.
    first_th, last_th = (page.locator("table.table thead th").nth(i).bounding_box() for i in (0, -1))
    assert first_th and last_th
    assert (first_th["x"] > last_th["x"]) if rtl else (first_th["x"] < last_th["x"])


def journey(page: Any, live_server: Any, demo: Demo, language: str, username: str, suffix: str = "") -> None:
    rtl = language == "ar"
    login(page, live_server.url, language, username)
    check_dashboard(page, demo, language, rtl)
    shot(page, f"{language}-dashboard{suffix}")
    open_last_bill(page, demo, language, rtl)
    shot(page, f"{language}-bill{suffix}")
    open_consumption(page, demo, language, rtl)
    shot(page, f"{language}-consumption{suffix}")


# --- Tests -------------------------------------------------------------------


def test_arabic_subscriber_logs_in_by_phone_and_reads_right_to_left(live_server, demo, new_page):
    page = new_page()
    page.goto(f"{live_server.url}/ar/login/")
    assert_direction(page, "ar", rtl=True)
    shot(page, "ar-login")
    journey(page, live_server, demo, "ar", PHONE_NATIONAL)


def test_french_subscriber_logs_in_by_email_and_reads_left_to_right(live_server, demo, new_page):
    page = new_page()
    page.goto(f"{live_server.url}/fr/login/")
    assert_direction(page, "fr", rtl=False)
    shot(page, "fr-login")
    journey(page, live_server, demo, "fr", DEMO_SUBSCRIBER_EMAIL.upper())  # e-mail in any case


@pytest.mark.parametrize(
    ("language", "username"), [("ar", "+216 20 000 001"), ("fr", DEMO_SUBSCRIBER_EMAIL)], ids=["ar", "fr"]
)
def test_pages_fit_a_small_phone(live_server, demo, new_page, language, username):
    page = new_page(PHONE)
    rtl = language == "ar"
    login(page, live_server.url, language, username)
    check_dashboard(page, demo, language, rtl)
    assert_no_sideways_scroll(page, "dashboard")
    # Cards stack in one column and fit the screen.
    for box in page.locator("article.card.account").evaluate_all(
        "cards => cards.map(c => { const r = c.getBoundingClientRect(); return [r.left, r.right]; })"
    ):
        assert box[0] >= 0 and box[1] <= PHONE["width"] + 1, f"a card sticks out of the screen: {box}"
    shot(page, f"{language}-dashboard-mobile")

    open_last_bill(page, demo, language, rtl)
    assert_no_sideways_scroll(page, "bill")
    shot(page, f"{language}-bill-mobile")

    open_consumption(page, demo, language, rtl)
    assert_no_sideways_scroll(page, "consumption")
    chart = page.locator("svg[data-testid=consumption-chart]").bounding_box()
    assert chart and chart["x"] >= 0 and chart["x"] + chart["width"] <= PHONE["width"] + 1
    shot(page, f"{language}-consumption-mobile")


def test_language_switch_keeps_the_page_and_is_remembered(live_server, demo, new_page):
    page = new_page()
    account = demo.accounts[ServiceKind.ELECTRICITY]
    login(page, live_server.url, "fr", DEMO_SUBSCRIBER_EMAIL)
    wait_for_path(page, "/fr/dashboard/")
    page.goto(f"{live_server.url}/fr/accounts/{account.number}/consumption/")
    assert_direction(page, "fr", rtl=False)
    assert page.locator("form.langs button[value=fr]").is_disabled()

    page.locator("form.langs button[name=language][value=ar]").click()
    wait_for_path(page, f"/ar/accounts/{account.number}/consumption/")
    assert_direction(page, "ar", rtl=True)
    assert page.locator("form.langs button[value=ar]").get_attribute("aria-pressed") == "true"
    assert page.locator("svg[data-testid=consumption-chart] rect.bar").count() == CHART_MONTHS
    shot(page, "ar-consumption-switched")

    # The next page the subscriber opens is Arabic too, even from an address
    # without a language.
    page.goto(f"{live_server.url}/")
    wait_for_path(page, "/ar/dashboard/")
    assert_direction(page, "ar", rtl=True)
    click_menu(page, "/ar/bills/")
    wait_for_path(page, "/ar/bills/")
    assert_direction(page, "ar", rtl=True)
    # ...and it is remembered on the subscriber for the messages we send.
    demo.subscriber.refresh_from_db()
    assert demo.subscriber.preferred_language == "ar"

    # Back to French the same way.
    page.locator("form.langs button[name=language][value=fr]").click()
    wait_for_path(page, "/fr/bills/")
    assert_direction(page, "fr", rtl=False)


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_wrong_password_shows_the_error_and_stays_on_login(live_server, demo, new_page, language):
    page = new_page()
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL, password="not-the-password")
    assert path_of(page) == f"/{language}/login/"
    assert_direction(page, language, rtl=language == "ar")
    error = page.locator("form .error[role=alert]")
    assert error.is_visible()
    assert text(error) == translated(LoginForm.error_messages["invalid_login"], language)
    # The identifier is kept so only the password needs typing again.
    assert page.locator("input[name=username]").input_value() == DEMO_SUBSCRIBER_EMAIL
    assert page.locator("input[name=password]").input_value() == ""
    shot(page, f"{language}-login-error")
    # Still logged out: the dashboard sends back to the login page.
    page.goto(f"{live_server.url}/{language}/dashboard/")
    wait_for_path(page, f"/{language}/login/")


# --- Contact channels, e-bills and paper copies (issue 3) ---------------------


def test_subscriber_registers_a_phone_verifies_it_goes_paperless_and_asks_for_paper(live_server, demo, new_page):
    from billing.models import PrintRequest
    from notifications.models import Message
    from notifications.verification import VERIFICATION_CODE, verification_codes_fill

    page = new_page(PHONE)
    login(page, live_server.url, "ar", PHONE_NATIONAL)
    wait_for_path(page, "/ar/dashboard/")
    page.goto(f"{live_server.url}/ar/contact/")
    assert_direction(page, "ar", rtl=True)
    page.select_option("#id_kind", "whatsapp")
    page.fill("#id_address", "98 123 456")
    with page.expect_navigation():
        page.click("form:has(#id_address) button.primary")
    assert re.search(r"/ar/contact/\d+/verify/$", path_of(page)), path_of(page)

    # The subscriber reads the code the channel received (the relay fills it in; the row says ******).
    sent = Message.objects.filter(event=VERIFICATION_CODE.name, address="+21698123456").latest("created_at")
    code = verification_codes_fill([sent])[sent.pk]
    page.fill("#id_code", "000000" if code != "000000" else "111111")
    with page.expect_navigation():
        page.click("button.primary")
    assert page.locator(".error[role=alert]").is_visible()  # a wrong code says so, on the same page
    page.fill("#id_code", code)
    with page.expect_navigation():
        page.click("button.primary")
    wait_for_path(page, "/ar/contact/")
    assert translated(gettext_lazy("Verified"), "ar") in text(page.locator("table.table"))
    assert_no_sideways_scroll(page, "contact page")
    shot(page, "ar-contact-mobile")

    with page.expect_navigation():
        page.click("form[action$='/contact/paperless/'] button")
    demo.subscriber.refresh_from_db()
    assert demo.subscriber.paperless

    bill = demo.last_bill(demo.accounts[ServiceKind.WATER])
    page.goto(f"{live_server.url}/ar/bills/{bill.number}/")
    with page.expect_navigation():
        page.click("form[action$='/paper-copy/'] button")
    assert page.locator(".messages li").is_visible()
    request = PrintRequest.objects.get(bill=bill)
    assert request.agency == demo.subscriber.agency
    shot(page, "ar-bill-paper-copy-mobile")


def test_the_subscriber_downloads_her_bill_as_a_pdf_in_her_language(live_server, demo, new_page):
    page = new_page()
    login(page, live_server.url, "ar", PHONE_NATIONAL)
    open_last_bill(page, demo, "ar", rtl=True)

    with page.expect_download() as download_info:
        page.get_by_test_id("bill-pdf").click()

    download = download_info.value
    bill = demo.last_bill(demo.accounts[ServiceKind.ELECTRICITY])
    assert download.suggested_filename == f"bill-{bill.number}.pdf"
    text = " ".join(p.extract_text() for p in PdfReader(download.path()).pages)
    assert "رقم الحساب" in text and bill.account.display_number in text
