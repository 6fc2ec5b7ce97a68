"""Staff sign-in: a password alone opens no back-office page when a second factor is required."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Subscriber, User

pytestmark = pytest.mark.django_db

OTP_PAGE = "/fr/admin/otp/"


@pytest.fixture
def otp_required(settings) -> None:
    settings.SELFCARE_STAFF_OTP_REQUIRED = True


def _password_login(user: User, password: str) -> Client:
    client = Client()
    response = client.post("/fr/admin/login/?next=/fr/admin/", {"username": user.email, "password": password})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    return client


def _admin_pages(subscriber: Subscriber) -> list[str]:
    return [
        "/fr/admin/",
        "/fr/admin/accounts/subscriber/",
        f"/fr/admin/accounts/subscriber/{subscriber.pk}/change/",
        "/fr/admin/notifications/message/",
        "/fr/admin/autocomplete/?app_label=accounts&model_name=subscriber&field_name=agency&term=a",
    ]


def _enrol(client: Client) -> TOTPDevice:
    page = client.get(OTP_PAGE)
    secret = re.search(r'<code dir="ltr">([A-Z2-7]+)</code>', page.content.decode()).group(1)
    response = client.post(OTP_PAGE, {"code": f"{totp(b32decode(secret)):06d}", "next": "/fr/admin/"})
    assert response.status_code == 302
    return TOTPDevice.objects.get(confirmed=True)


def test_a_password_alone_opens_no_admin_page(otp_required, clerk: User, subscriber: Subscriber, password) -> None:
    client = _password_login(clerk, password)
    for url in _admin_pages(subscriber):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"] or response["Location"].startswith(OTP_PAGE), url
    # The login page itself sends the half-signed-in clerk on to the code step.
    assert client.get("/fr/admin/login/?next=/fr/admin/")["Location"].startswith(OTP_PAGE)


def test_first_login_enrols_with_a_qr_code_then_the_code_opens_the_back_office(
    otp_required, clerk: User, subscriber: Subscriber, password
) -> None:
    client = _password_login(clerk, password)
    page = client.get(OTP_PAGE)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in page.content.decode()  # the QR code, no third-party script
    device = _enrol(client)
    assert device.user == clerk
    for url in _admin_pages(subscriber):
        assert client.get(url).status_code == 200, url


def test_a_later_login_asks_for_the_code_and_offers_no_new_enrolment(
    otp_required, clerk: User, subscriber: Subscriber, password
) -> None:
    device = _enrol(_password_login(clerk, password))
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # the next 30-second step

    client = _password_login(clerk, password)
    page = client.get(OTP_PAGE).content.decode()
    assert "data:image/svg+xml" not in page and device.key.upper() not in page.upper()
    assert client.get("/fr/admin/accounts/subscriber/").status_code == 302
    client.post(OTP_PAGE, {"code": f"{totp(device.bin_key):06d}"})
    assert client.get("/fr/admin/accounts/subscriber/").status_code == 200
    assert TOTPDevice.objects.filter(user=clerk).count() == 1


def test_a_wrong_code_is_refused_and_throttles_the_next_try(
    otp_required, clerk: User, subscriber: Subscriber, password
) -> None:
    device = _enrol(_password_login(clerk, password))
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)

    client = _password_login(clerk, password)
    right = f"{totp(device.bin_key):06d}"
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = client.post(OTP_PAGE, {"code": wrong})
    assert response.status_code == 200 and response.context["form"].errors
    assert client.get("/fr/admin/accounts/subscriber/").status_code == 302
    # django-otp's throttling: straight after a wrong code, even the right one waits.
    client.post(OTP_PAGE, {"code": right})
    assert client.get("/fr/admin/accounts/subscriber/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1


def test_a_wrong_code_does_not_confirm_an_enrolment(otp_required, clerk: User, password) -> None:
    client = _password_login(clerk, password)
    client.get(OTP_PAGE)
    client.post(OTP_PAGE, {"code": "000000"})
    assert not TOTPDevice.objects.filter(user=clerk, confirmed=True).exists()
    assert client.get("/fr/admin/").status_code == 302


def test_subscribers_sign_in_with_their_password_alone(otp_required, subscriber: Subscriber, password) -> None:
    client = Client()
    response = client.post("/fr/login/", {"username": subscriber.user.email, "password": password})
    assert response["Location"] == "/fr/dashboard/"
    assert client.get("/fr/dashboard/").status_code == 200


def test_the_demo_lets_staff_in_with_the_password_alone(clerk: User, subscriber: Subscriber, password, settings):
    # What `make run` gets: DEBUG=1 and no SELFCARE_STAFF_OTP_REQUIRED in its environment.
    env = {k: v for k, v in os.environ.items() if k != "SELFCARE_STAFF_OTP_REQUIRED"} | {"DEBUG": "1"}
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", "from django.conf import settings; print(settings.SELFCARE_STAFF_OTP_REQUIRED)"],
        env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    assert shown == "False"
    settings.SELFCARE_STAFF_OTP_REQUIRED = False
    client = _password_login(clerk, password)
    assert client.get("/fr/admin/accounts/subscriber/").status_code == 200
