"""The demo subscriber changes plan on a 360 x 780 phone, in chromium: from the
dashboard to the plan page (the current plan shown once), the preview of the
next bill, the confirmation, and the pending change with its cancel button.
Screenshots: `ar-plan-change-preview-mobile.png`, `ar-plan-change-pending-mobile.png`…"""

from __future__ import annotations

from typing import Any

import pytest

from billing.demo import DEMO_SUBSCRIBER_EMAIL
from billing.models import Plan, PlanChange, ServiceKind
from billing.tests.browser import (
    Demo,
    assert_direction,
    assert_no_sideways_scroll,
    login,
    shot,
    text,
    wait_for_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 780}


def open_plan_page(page: Any, demo: Demo, language: str, kind: str) -> Any:
    account = demo.accounts[kind]
    wait_for_path(page, f"/{language}/dashboard/")
    card = page.locator("article.card.account").filter(has_text=account.display_number)
    card.locator(f"a[href='/{language}/accounts/{account.number}/plan/']").click()
    wait_for_path(page, f"/{language}/accounts/{account.number}/plan/")
    assert_direction(page, language, rtl=language == "ar")
    assert_no_sideways_scroll(page, "plan page")
    # The current plan once: its own card, and not again among the others.
    current = Plan.objects.get(pk=account.plan_id)
    assert page.get_by_test_id("current-plan").count() == 1
    assert page.get_by_text(getattr(current, f"name_{language}"), exact=True).count() == 1
    return account


def choose(page: Any, plan: Plan, language: str) -> None:
    card = page.get_by_test_id("other-plan").filter(has_text=getattr(plan, f"name_{language}"))
    with page.expect_navigation():
        card.locator("button[type=submit]").click()


def confirm(page: Any, name: str) -> None:
    preview = page.get_by_test_id("plan-change-preview")
    assert preview.is_visible()
    assert page.get_by_test_id("estimate-old").is_visible() and page.get_by_test_id("estimate-new").is_visible()
    assert_no_sideways_scroll(page, "plan change preview")
    button = page.get_by_test_id("confirm-change")
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
    shot(page, f"{name}-preview-mobile")
    with page.expect_navigation():
        button.click()


def test_an_arabic_subscriber_moves_the_mobile_line_to_another_plan_and_cancels(live_server, demo, new_page):
    page = new_page(PHONE)
    login(page, live_server.url, "ar", DEMO_SUBSCRIBER_EMAIL)
    account = open_plan_page(page, demo, "ar", ServiceKind.MOBILE)
    bigger = Plan.objects.get(code="MOB-30")
    choose(page, bigger, "ar")
    assert bigger.name_ar in text(page.locator("h2").first)
    confirm(page, "ar-plan-change")

    # Back on the plan page: the change waits for the next period, with a cancel button.
    wait_for_path(page, f"/ar/accounts/{account.number}/plan/")
    pending = page.get_by_test_id("open-change")
    assert pending.is_visible() and pending.get_attribute("data-status") == "scheduled"
    assert bigger.name_ar in text(pending)
    assert page.locator(".messages li").is_visible()
    assert page.get_by_test_id("other-plan").locator("button").count() == 0  # one change at a time
    assert_no_sideways_scroll(page, "plan page with a pending change")
    shot(page, "ar-plan-change-pending-mobile")
    change = PlanChange.objects.get(account=account)
    assert (change.status, change.to_plan_id) == (PlanChange.Status.SCHEDULED, bigger.pk)

    with page.expect_navigation():
        page.get_by_test_id("cancel-change").click()
    assert page.get_by_test_id("open-change").count() == 0
    change.refresh_from_db()
    assert change.status == PlanChange.Status.CANCELLED


def test_a_french_subscriber_asks_for_a_plan_that_needs_the_agencys_approval(live_server, demo, new_page):
    page = new_page(PHONE)
    login(page, live_server.url, "fr", DEMO_SUBSCRIBER_EMAIL)
    account = open_plan_page(page, demo, "fr", ServiceKind.ELECTRICITY)
    business = Plan.objects.get(code="ELEC-PRO")
    choose(page, business, "fr")
    confirm(page, "fr-plan-change")
    wait_for_path(page, f"/fr/accounts/{account.number}/plan/")
    pending = page.get_by_test_id("open-change")
    assert pending.get_attribute("data-status") == "pending_approval"
    assert_no_sideways_scroll(page, "plan page with a change waiting for approval")
    shot(page, "fr-plan-change-pending-mobile")
    assert PlanChange.objects.get(account=account).status == PlanChange.Status.PENDING_APPROVAL
