"""The subscriber's pages on a cheap 360 x 780 phone, in chromium (issue 10).

One walk follows every link the pages offer a subscriber (menus, cards, lists),
in Arabic, French and English, and checks that no page scrolls sideways; the
bills list shows each bill as a compact card; the header is one short line with
the menu folded, without any script. Screenshots: `ar-bills-mobile.png`,
`fr-header-mobile.png`…
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone, translation

from accounts.models import ChannelKind, ContactChannel
from billing.demo import DEMO_SUBSCRIBER_EMAIL
from billing.models import Consumption, ServiceKind, Unit
from billing.tests.browser import (
    assert_no_sideways_scroll,
    login,
    path_of,
    shot,
    wait_for_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 780}
# Links that are not pages to look at: files, the back office, the language switch.
NOT_PAGES = re.compile(r"/(pdf|admin|logout|i18n)/|/print/$")
# Pages of one kind (every bill, every receipt) look alike: a few of each is enough.
PER_KIND = 2
MAX_PAGES = 60


def page_kind(path: str) -> str:
    """`/fr/bills/E-2026-000123/` and `/fr/bills/W-2026-000456/` are one kind."""
    return re.sub(r"[0-9A-Z][0-9A-Z-]*", "#", path.split("?")[0])


def links_of(page: Any, language: str) -> list[str]:
    hrefs = page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return [h for h in hrefs if h.startswith(f"/{language}/") and not NOT_PAGES.search(h.split("?")[0])]


def walk(page: Any, base_url: str, start: str, language: str) -> list[str]:
    """Visits every page reachable from `start` (a few of each kind); returns the paths seen."""
    seen: set[str] = set()
    kinds: dict[str, int] = {}
    queue = [start]
    visited: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        kind = page_kind(path)
        if kinds.get(kind, 0) >= PER_KIND:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        response = page.goto(base_url + path)
        assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
        assert_no_sideways_scroll(page, f"{language} {path}")
        visited.append(path)
        queue.extend(link for link in links_of(page, language) if link not in seen)
    return visited


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_every_subscriber_page_fits_a_small_phone(live_server, demo, new_page, language):
    page = new_page(PHONE)
    # The pages before logging in.
    for path in ("login/", "password-reset/", "agencies/"):
        page.goto(f"{live_server.url}/{language}/{path}")
        assert_no_sideways_scroll(page, f"{language} /{language}/{path}")
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    wait_for_path(page, f"/{language}/dashboard/")
    visited = walk(page, live_server.url, f"/{language}/dashboard/", language)
    # The walk did reach the pages the menus and cards offer.
    for where in ("/bills/", "/messages/", "/contact/", "/consumption/", "/plan/", "/pay/", "/payments/"):
        assert any(where in path for path in visited), f"the walk never reached {where}: {visited}"
    assert any(re.search(r"/bills/[^/]+/$", path) for path in visited)


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_bills_list_is_a_compact_card_per_bill_on_a_phone(live_server, demo, new_page, language):
    page = new_page(PHONE)
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    page.goto(f"{live_server.url}/{language}/bills/")
    assert_no_sideways_scroll(page, "bills list")
    rows = page.locator("table.bills tbody tr")
    assert rows.count() >= 5
    with translation.override(language):
        kinds = tuple(str(kind.label) for kind in ServiceKind)
    settled = 0
    for index in range(rows.count()):
        row = rows.nth(index)
        # A paid bill shows its total and its badge, not "0,000 due".
        is_settled = row.locator("[data-cell=amount-due][data-settled]").count() == 1
        settled += is_settled
        if index >= 5 and not is_settled:
            continue
        cells = ("period", "total", "status") if is_settled else ("period", "total", "amount-due", "status")
        for cell in cells:
            box = row.locator(f"[data-cell={cell}]").bounding_box()
            assert box, f"row {index}: no {cell}"
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, f"row {index}: {cell} at {box}"
        if is_settled:
            assert row.locator("[data-cell=amount-due]").bounding_box() is None, f"row {index}: a paid bill's 0 due"
        # The service beside the account number, not the number alone.
        account = row.locator("[data-cell=account]").inner_text()
        assert any(kind in account for kind in kinds), f"row {index}: {account!r}"
        # Compact: a bill takes a few lines, not a screenful.
        row_box = row.bounding_box()
        assert row_box and row_box["height"] < 150, f"row {index} is {row_box['height']}px high"
    assert settled, "the demo's paid bills"
    # An account number never wraps mid-number.
    number = rows.first.locator("bdi.number")
    height, line = number.evaluate(
        "n => [n.getBoundingClientRect().height, parseFloat(getComputedStyle(n).lineHeight)]"
    )
    assert height < 1.6 * line
    shot(page, f"{language}-bills-mobile")


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_bill_totals_line_up_with_the_amounts_on_a_phone(live_server, demo, new_page, language):
    page = new_page(PHONE)
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    page.goto(f"{live_server.url}/{language}/bills/")
    page.locator("table.bills tbody tr a").first.click()
    page.wait_for_url(re.compile(r"/bills/[^/]+/$"))
    amounts = page.locator("table.table tbody td.num:visible").evaluate_all(
        "cells => cells.map(c => { const r = c.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    totals = page.locator("table.table tfoot td.num").evaluate_all(
        "cells => cells.map(c => { const r = c.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    assert amounts and totals
    column = amounts[-1]
    for total in totals:
        assert abs(total[0] - column[0]) < 1 and abs(total[1] - column[1]) < 1, f"{total} under {column}"
    # No phantom column: the amounts reach the table's far edge.
    table = page.locator("table.table").evaluate(
        "t => { const r = t.getBoundingClientRect(); return [r.left, r.right]; }"
    )
    edge = table[0] if language == "ar" else table[1]
    assert abs((column[0] if language == "ar" else column[1]) - edge) < 2, f"amounts at {column}, table {table}"
    shot(page, f"{language}-bill-totals-mobile")


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_header_is_one_short_line_with_the_menu_folded_and_no_script(live_server, demo, new_page, language):
    page = new_page(PHONE)
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    wait_for_path(page, f"/{language}/dashboard/")
    assert page.locator("script").count() == 0
    shot(page, f"{language}-header-mobile")
    header = page.locator("header.topbar").bounding_box()
    assert header and header["height"] <= 64, f"the header is {header['height']}px high"
    menu = page.locator("nav.mainnav")
    bills = menu.locator(f"a[href='/{language}/bills/']")
    assert not bills.is_visible()
    # One tap opens it, no script involved.
    page.locator("header.topbar label.menu-button").click()
    assert bills.is_visible()
    shot(page, f"{language}-header-open-mobile")
    bills.click()
    wait_for_path(page, f"/{language}/bills/")
    assert path_of(page) == f"/{language}/bills/"


def test_header_shows_the_menu_open_on_a_desktop(live_server, demo, new_page):
    page = new_page({"width": 1280, "height": 900})
    login(page, live_server.url, "fr", DEMO_SUBSCRIBER_EMAIL)
    wait_for_path(page, "/fr/dashboard/")
    assert page.locator("nav.mainnav a[href='/fr/bills/']").is_visible()
    header = page.locator("header.topbar").bounding_box()
    assert header and header["height"] <= 64


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_chart_labels_read_11px_and_phone_numbers_stay_whole_on_a_phone(live_server, demo, new_page, language):
    page = new_page(PHONE)
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    account = demo.accounts[ServiceKind.ELECTRICITY]
    page.goto(f"{live_server.url}/{language}/accounts/{account.number}/consumption/")
    sizes = page.locator("svg[data-testid=consumption-chart] text.axis").evaluate_all(
        """labels => labels.filter(t => getComputedStyle(t).display !== 'none').map(t => {
            const svg = t.ownerSVGElement;
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            const box = t.getBoundingClientRect();
            return [parseFloat(getComputedStyle(t).fontSize) * scale, box.left, box.right, t.getAttribute('text-anchor')];
        })"""
    )
    assert len(sizes) >= 5
    assert all(size >= 11 for size, *_ in sizes), f"axis labels on the screen: {[round(s[0], 1) for s in sizes]} px"
    # The month labels under the bars do not run into each other.
    months = sorted((left, right) for _, left, right, anchor in sizes if anchor == "middle")
    assert len(months) >= 3
    for (_, right), (left, _) in itertools.pairwise(months):
        assert right <= left + 1, f"month labels overlap: {months}"
    svg = page.locator("svg[data-testid=consumption-chart]").bounding_box()
    assert svg
    for _, left, right, _ in sizes:
        assert svg["x"] - 1 <= left and right <= svg["x"] + svg["width"] + 1, "a label is cut by the chart's edge"
    shot(page, f"{language}-consumption-labels-mobile")


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_value_labels_are_whole_on_a_phone_for_every_service(live_server, demo, new_page, language):
    """The top value label read "1.00" for "1.000" in Arabic: the chart's start
    padding did not grow with the label. Measured in the drawing's own units, no slack."""
    # Last month's electricity near 1 000 kWh: a top label of "1.000" ("1 000" in French).
    electricity = demo.accounts[ServiceKind.ELECTRICITY]
    last = Consumption.objects.filter(account=electricity, unit=Unit.KWH).latest("period")
    Consumption.objects.filter(pk=last.pk).update(quantity=Decimal("950"))
    page = new_page(PHONE)
    login(page, live_server.url, language, DEMO_SUBSCRIBER_EMAIL)
    widest = 0.0
    for kind, account in demo.accounts.items():
        page.goto(f"{live_server.url}/{language}/accounts/{account.number}/consumption/")
        boxes = page.locator("svg[data-testid=consumption-chart] text.axis:not([text-anchor=middle])").evaluate_all(
            "labels => labels.map(t => { const b = t.getBBox(); return [t.textContent, b.x, b.x + b.width]; })"
        )
        assert len(boxes) == 3, kind
        for text, left, right in boxes:
            assert 0 <= left and right <= 480, f"{kind}: {text!r} drawn from {left:.1f} to {right:.1f} of 0-480"
            widest = max(widest, right - left)
    assert widest > 45, "the electricity chart's top label is 1 000"

    for kind in (ChannelKind.SMS, ChannelKind.WHATSAPP):
        ContactChannel.objects.get_or_create(
            subscriber=demo.subscriber,
            kind=kind,
            address="+21620000001",
            defaults={"language": language, "verified_at": timezone.now()},
        )
    page.goto(f"{live_server.url}/{language}/contact/")
    phones = page.locator("td.address bdi.tel")
    assert phones.count() >= 1
    for height, line in phones.evaluate_all(
        "ns => ns.map(n => [n.getBoundingClientRect().height, parseFloat(getComputedStyle(n).lineHeight) || 20])"
    ):
        assert height < 1.6 * line, "a phone number broke over two lines"
    assert_no_sideways_scroll(page, "contact")
