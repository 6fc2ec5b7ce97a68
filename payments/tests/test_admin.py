"""The payments back office: smoke tests of every page, the secret shown once, read-only money."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.tests.factories import BillFactory, ServiceAccountFactory
from payments.crypto import secret_open
from payments.models import ApiInbox, Payment, PaymentOrder, Provider
from payments.services import payment_apply

from .factories import call

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def payment(bank):
    bill = BillFactory()
    return payment_apply(
        provider=bank, reference="ADM-1", account_number=bill.account.number, amount=Decimal("5.000"),
        currency="TND", paid_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    ).payment  # fmt: skip


def test_every_payments_page_opens(admin_client, bank, payment, client):
    call(client, "GET", f"/api/v1/accounts/{payment.account.number}/due", provider=bank)
    inbox = ApiInbox.objects.get()
    for url in [
        "/fr/admin/payments/provider/", f"/fr/admin/payments/provider/{bank.pk}/change/", "/fr/admin/payments/provider/add/",
        "/fr/admin/payments/payment/", f"/fr/admin/payments/payment/{payment.pk}/change/",
        "/fr/admin/payments/apiinbox/", f"/fr/admin/payments/apiinbox/{inbox.pk}/change/",
    ]:  # fmt: skip
        assert admin_client.get(url).status_code == 200, url


def test_payments_and_the_inbox_cannot_be_edited_or_deleted(admin_client, payment):
    page = admin_client.get(f"/fr/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert 'name="amount"' not in page
    assert admin_client.post(f"/fr/admin/payments/payment/{payment.pk}/delete/").status_code == 403
    assert admin_client.get("/fr/admin/payments/payment/add/").status_code == 403


def test_a_new_provider_s_secret_is_shown_once_and_stored_sealed(admin_client):
    response = admin_client.post(
        "/fr/admin/payments/provider/add/",
        {"name": "Banque Test", "kind": "bank", "key_id": "test-bank", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'id="provider-secret" dir="ltr">([^<]+)<', response.content.decode()).group(1)
    provider = Provider.objects.get(key_id="test-bank")
    assert secret not in provider.secret_sealed
    assert secret_open(provider.secret_sealed, key_id="test-bank") == secret
    # Never again: not on its page, not in a message left in the session.
    assert secret not in admin_client.get(f"/fr/admin/payments/provider/{provider.pk}/change/").content.decode()
    assert secret not in admin_client.get("/fr/admin/payments/provider/").content.decode()


def test_rotating_shows_the_new_secret_and_keeps_the_old_one_until_the_end(admin_client, bank):
    changelist = "/fr/admin/payments/provider/"
    response = admin_client.post(changelist, {"action": "rotate_secret", "_selected_action": [bank.pk]})
    secret = re.search(r'id="provider-secret" dir="ltr">([^<]+)<', response.content.decode()).group(1)
    bank.refresh_from_db()
    assert secret_open(bank.secret_sealed, key_id=bank.key_id) == secret
    assert bank.is_rotating
    admin_client.post(changelist, {"action": "end_rotation", "_selected_action": [bank.pk]})
    bank.refresh_from_db()
    assert not bank.is_rotating


def test_a_clerk_sees_no_provider_secrets_or_payments_admin(client, clerk):
    client.force_login(clerk)
    assert client.get("/fr/admin/payments/provider/add/").status_code == 403
    assert client.get("/fr/admin/payments/provider/").status_code == 403


def test_the_demo_sandbox_bank_is_refused_without_debug(settings):
    from django.core.exceptions import ImproperlyConfigured

    from payments.demo import SANDBOX_SECRET, sandbox_provider_ensure

    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        sandbox_provider_ensure()
    settings.DEBUG = True
    provider = sandbox_provider_ensure()
    assert secret_open(Provider.objects.get(pk=provider.pk).secret_sealed, key_id="sandbox") == SANDBOX_SECRET
    assert sandbox_provider_ensure().pk == provider.pk
    assert Payment.objects.count() == 0


def test_a_clerk_finds_a_subscriber_s_failed_checkout_and_why(client, clerk, subscriber, bank):
    """ "I paid with my wallet and my bill still shows due": the clerk finds the
    order by the account number and reads the reason it did not complete."""
    account = ServiceAccountFactory(subscriber=subscriber)
    order = PaymentOrder.objects.create(
        subscriber=subscriber, account=account, provider=bank, reference="POCLERK1", amount=Decimal("9.500"),
        currency="TND", expires_at=timezone.now(), status=PaymentOrder.Status.FAILED,
        provider_ref="KNT-77", error="paid amount or account differs from the order",
    )  # fmt: skip
    client.force_login(clerk)
    found = client.get("/fr/admin/payments/paymentorder/", {"q": account.number})
    assert found.status_code == 200 and "POCLERK1" in found.text
    page = client.get(f"/fr/admin/payments/paymentorder/{order.pk}/change/")
    assert page.status_code == 200
    assert "KNT-77" in page.text and "paid amount or account differs from the order" in page.text
    # Read-only: a checkout is the provider's record, not the clerk's to edit.
    assert client.post(f"/fr/admin/payments/paymentorder/{order.pk}/change/", {}).status_code == 403
