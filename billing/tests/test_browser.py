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

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import translation
from django.utils.translation import gettext_lazy
from pypdf import PdfReader

from accounts.forms import LoginForm
from accounts.models import Subscriber
from billing.demo import DEMO_PASSWORD, DEMO_SUBSCRIBER_EMAIL, demo_seed
from billing.models import Bill, ServiceAccount, ServiceKind
from core.money import format_money

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}  # a cheap Android phone
TIMEOUT_MS = 15_000
CHART_MONTHS = 24
PHONE_NATIONAL = "20 000 001"  # the demo subscriber's +21620000001, as people type it


# --- Fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop running in the test thread, so
    Django's ORM there (seeding, expected values, the flush between tests) would
    refuse to run. Allowed for this module only, restored when it is done."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed: None) -> Iterator[Any]:
    """One chromium per module. Fails, never skips, when it cannot start."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Browser tests need Debian's chromium at {CHROMIUM}, which is missing. "
            "Run scripts/ensure-chromium.sh (as root it installs it with apt-get; `make test` runs it first) "
            "or install it with `apt-get install --no-install-recommends chromium`.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Browser tests need Playwright for Python ({exc}); install requirements-dev.txt.", pytrace=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"Could not start {CHROMIUM} through Playwright: {exc}", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """`new_page(viewport)`: a page in a fresh context (no cookies), closed after the test."""
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(viewport=viewport, locale="fr-FR")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@dataclass
class Demo:
    subscriber: Subscriber
    accounts: dict[str, ServiceAccount]  # by kind

    def open_amount_due(self, account: ServiceAccount) -> Decimal:
        """What the dashboard card should show: every open bill's amount due."""
        total = Bill.objects.filter(account=account, status__in=Bill.OPEN_STATUSES, amount_due__gt=0).aggregate(
            total=Sum("amount_due")
        )["total"]
        return total or Decimal(0)

    def last_bill(self, account: ServiceAccount) -> Bill:
        return Bill.objects.filter(account=account).exclude(status=Bill.Status.CANCELLED).latest("period")


@pytest.fixture
def demo(transactional_db: None, _async_unsafe_allowed: None) -> Demo:
    demo_seed(subscribers=5, months=36)
    subscriber = Subscriber.objects.get(user__email=DEMO_SUBSCRIBER_EMAIL)
    accounts = {a.kind: a for a in ServiceAccount.objects.filter(subscriber=subscriber)}
    assert set(accounts) == {ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.GAS, ServiceKind.MOBILE}
    return Demo(subscriber=subscriber, accounts=accounts)


# --- Helpers -----------------------------------------------------------------


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def translated(message: Any, language: str) -> str:
    with translation.override(language):
        return str(message)


def login(page: Any, base_url: str, language: str, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base_url}/{language}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button.primary[type=submit]")


def click_menu(page: Any, href: str) -> None:
    """Clicks a main-menu link, unfolding the menu first on a phone (its button)."""
    button = page.locator("header.topbar label.menu-button")
    if button.is_visible():
        button.click()
    page.locator(f"nav.mainnav a[href='{href}']").click()


def path_of(page: Any) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def wait_for_path(page: Any, path: str) -> None:
    page.wait_for_url(re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$"))


def text(locator: Any) -> str:
    return (locator.text_content() or "").strip()


def assert_direction(page: Any, language: str, rtl: bool) -> None:
    html = page.locator("html")
    assert html.get_attribute("lang") == language
    assert html.get_attribute("dir") == ("rtl" if rtl else "ltr")
    assert page.evaluate("getComputedStyle(document.body).direction") == ("rtl" if rtl else "ltr")
    # The stylesheet came through: an unstyled page would be white, not the app's grey.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 247, 250)"
    # What a person notices: the brand stands at the reading start of the bar, the
    # language switcher at its end.
    width = page.evaluate("window.innerWidth")
    brand = page.locator("header.topbar a.brand").bounding_box()
    langs = page.locator("header.topbar form.langs").bounding_box()
    assert brand and langs
    brand_centre, langs_centre = brand["x"] + brand["width"] / 2, langs["x"] + langs["width"] / 2
    if rtl:
        assert brand_centre > width / 2, f"brand at x={brand['x']} on an RTL page {width}px wide"
        assert langs_centre < brand_centre
    else:
        assert brand_centre < width / 2, f"brand at x={brand['x']} on an LTR page {width}px wide"
        assert langs_centre > brand_centre


def assert_no_sideways_scroll(page: Any, where: str) -> None:
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width + 1, f"{where}: the page is {scroll_width}px wide in a {inner_width}px window"


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
