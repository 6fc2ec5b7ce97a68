"""Playwright driving Debian's chromium, for every app's browser tests: the
fixtures (registered for the whole suite by the root conftest's pytest_plugins:
`browser`, `new_page`, `demo`) and the helpers the tests import.

Nothing here skips: without /usr/bin/chromium (`make test` installs it with
scripts/ensure-chromium.sh) or without Playwright the browser fixture fails with
the reason.
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

from accounts.models import Subscriber
from billing.demo import DEMO_PASSWORD, DEMO_SUBSCRIBER_EMAIL, demo_seed
from billing.models import Bill, ServiceAccount, ServiceKind

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
