"""Passwords on a 360 x 780 phone, in chromium, in Arabic (right to left) and French
(issue 10): a forgotten password reset by a code sent by SMS, from the login page
to logging in with the new password; and a logged-in subscriber's login details
and password change, after which another device of hers is logged out.

The code is read as the SMS carries it: what the relay fills into the outbox
row (which itself holds `******`), as the channel verification test does.
Screenshots: `ar-password-reset-sms-code-mobile.png`, `fr-login-details-mobile.png`…
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from django.utils.translation import gettext_lazy

from accounts.models import ChannelKind, ContactChannel, Subscriber
from accounts.tests.factories import PASSWORD, SubscriberFactory
from billing.tests.browser import (
    assert_direction,
    assert_no_sideways_scroll,
    click_menu,
    login,
    shot,
    text,
    translated,
    wait_for_path,
)
from notifications.models import Message
from notifications.passwords import PASSWORD_RESET_CODE
from notifications.verification import verification_codes_fill

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 780}
NEW = "a-new-long-passphrase"
# How a phone's Arabic keyboard types her number, and how a French one does.
TYPED = {"ar": "٢٠ ١١١ ٢٢٢", "fr": "20 111 222"}


@pytest.fixture
def salma(transactional_db: None, _async_unsafe_allowed: None) -> Subscriber:
    """A subscriber who logs in with +216 20 111 222, verified as her SMS channel."""
    subscriber = SubscriberFactory(
        user__email="salma@example.com", user__phone="+21620111222", full_name="Salma Gharbi"
    )
    ContactChannel.objects.create(
        subscriber=subscriber, kind=ChannelKind.SMS, address="+21620111222", language="ar", verified_at=timezone.now()
    )
    return subscriber


def check_page(page: Any, language: str, name: str) -> None:
    assert_direction(page, language, rtl=language == "ar")
    assert_no_sideways_scroll(page, f"{language} {name}")
    shot(page, f"{language}-{name}-mobile")


def sms_code() -> str:
    message = Message.objects.filter(event=PASSWORD_RESET_CODE.name).latest("created_at")
    return verification_codes_fill([message])[message.pk]


def fill_code_form(page: Any, code: str) -> None:
    page.fill("#id_code", code)
    page.fill("#id_new_password1", NEW)
    page.fill("#id_new_password2", NEW)
    with page.expect_navigation():
        page.click("form:has(#id_code) button.primary")


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_a_forgotten_password_is_reset_by_a_code_sent_by_sms(live_server, salma, new_page, language) -> None:
    page = new_page(PHONE)
    page.goto(f"{live_server.url}/{language}/login/")
    page.click(f"a[href='/{language}/password-reset/']")
    wait_for_path(page, f"/{language}/password-reset/")
    check_page(page, language, "password-reset")

    page.fill("#id_phone", TYPED[language])
    with page.expect_navigation():
        page.click("form[action$='/password-reset/sms/'] button.primary")
    wait_for_path(page, f"/{language}/password-reset/sms-code/")
    # The number she typed, read back left to right even on the Arabic page.
    assert text(page.locator("bdi.tel")) == "20\u00a0111\u00a0222"
    check_page(page, language, "password-reset-sms-code")

    code = sms_code()
    fill_code_form(page, "000000" if code != "000000" else "111111")
    error = page.locator("form .error[role=alert]")
    assert error.is_visible()
    message = "This code is not right or no longer valid. Check it, or ask for a new one."
    assert text(error) == translated(gettext_lazy(message), language)
    assert_no_sideways_scroll(page, f"{language} code error")
    shot(page, f"{language}-password-reset-sms-error-mobile")

    fill_code_form(page, code)
    wait_for_path(page, f"/{language}/password-reset/done/")
    check_page(page, language, "password-reset-done")

    login(page, live_server.url, language, TYPED[language], password=NEW)
    wait_for_path(page, f"/{language}/dashboard/")


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_she_sees_her_login_details_and_changes_her_password(live_server, salma, new_page, language) -> None:
    other_device = new_page(PHONE)
    login(other_device, live_server.url, language, "salma@example.com", password=PASSWORD)
    wait_for_path(other_device, f"/{language}/dashboard/")

    page = new_page(PHONE)
    login(page, live_server.url, language, "20 111 222", password=PASSWORD)
    wait_for_path(page, f"/{language}/dashboard/")
    click_menu(page, f"/{language}/login-details/")
    wait_for_path(page, f"/{language}/login-details/")
    assert text(page.get_by_test_id("login-email")) == "salma@example.com"
    assert text(page.get_by_test_id("login-phone")) == "20\u00a0111\u00a0222"
    assert page.locator(".details .badge.status-active").is_visible()  # codes by SMS can reach it
    check_page(page, language, "login-details")

    page.click(f"a[href='/{language}/login-details/password/']")
    wait_for_path(page, f"/{language}/login-details/password/")
    check_page(page, language, "password-change")

    for current in ("not-my-password", PASSWORD):
        page.fill("#id_old_password", current)
        page.fill("#id_new_password1", NEW)
        page.fill("#id_new_password2", NEW)
        with page.expect_navigation():
            page.click("form button.primary")
        if current != PASSWORD:
            error = page.locator("form .error[role=alert]")
            wrong = "Your current password is not right. Please type it again."
            assert text(error) == translated(gettext_lazy(wrong), language)
            assert_no_sideways_scroll(page, f"{language} wrong current password")

    wait_for_path(page, f"/{language}/login-details/")
    assert page.locator(".messages li.success").is_visible()
    assert_no_sideways_scroll(page, f"{language} password changed")
    page.goto(f"{live_server.url}/{language}/dashboard/")
    wait_for_path(page, f"/{language}/dashboard/")  # this phone stays logged in
    other_device.goto(f"{live_server.url}/{language}/dashboard/")
    wait_for_path(other_device, f"/{language}/login/")  # the other device does not
