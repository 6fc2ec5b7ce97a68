"""The subscriber's pay flow: orders, their completion, expiry and the pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import IntegrityError
from django.utils import timezone

from billing.models import Bill, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from payments import orders
from payments.checkout import checkout_for
from payments.demo import sandbox_provider_ensure
from payments.models import Payment, PaymentOrder, Provider
from payments.services import AccountClosed, InvalidAmount, payment_apply
from payments.tests.factories import ProviderFactory


@pytest.fixture
def sandbox(db, settings) -> Provider:
    settings.DEBUG = True
    return sandbox_provider_ensure()


class Clock:
    """A shifted clock for django.utils.timezone.now (moved forward by tests)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)
        self._real = timezone.now

    def __call__(self) -> dt.datetime:
        return self._real() + self.offset

    def move(self, delta: dt.timedelta) -> None:
        self.offset += delta


@pytest.fixture
def clock(monkeypatch) -> Clock:
    shifted = Clock()
    monkeypatch.setattr(timezone, "now", shifted)
    return shifted


@pytest.fixture
def account(subscriber) -> ServiceAccount:
    return ServiceAccountFactory(subscriber=subscriber)


@pytest.fixture
def bills(account) -> list[Bill]:
    return [
        BillFactory(account=account, period=dt.date(2026, 8, 1)),
        BillFactory(account=account, period=dt.date(2026, 9, 1), amount_due=Decimal("59.500")),
    ]


def _order(subscriber, account, sandbox, **kw) -> PaymentOrder:
    return orders.order_create(subscriber=subscriber, account=account, provider=sandbox, **kw)


def _bank_pays(order: PaymentOrder, *, amount: Decimal | None = None) -> Payment:
    """What the sandbox bank's POST /api/v1/payments does, through the same service."""
    return payment_apply(
        provider=order.provider, reference=order.reference, account_number=order.account.number,
        amount=amount or order.amount, currency=order.currency, paid_at=timezone.now(), channel="sandbox",
    ).payment  # fmt: skip


# --- Services ---------------------------------------------------------------


def test_an_order_for_bills_is_their_total_with_a_provider_safe_reference(subscriber, account, bills, sandbox):
    order = _order(subscriber, account, sandbox, bills=bills)
    assert order.amount == Decimal("119.000")
    assert order.status == PaymentOrder.Status.CREATED
    assert order.bill_numbers == sorted(b.number for b in bills)
    assert 1 <= len(order.reference) <= 64 and order.reference.replace("-", "").replace("_", "").isalnum()
    assert order.expires_at - timezone.now() > dt.timedelta(minutes=29)


@pytest.mark.parametrize("amount", ["0", "-1", "0.0001", "1000000000000", "NaN", "Infinity"])
def test_an_order_refuses_amounts_the_currency_cannot_hold(subscriber, account, sandbox, amount):
    with pytest.raises(InvalidAmount):
        _order(subscriber, account, sandbox, amount=Decimal(amount))
    assert not PaymentOrder.objects.exists()


def test_an_order_for_a_small_amount_is_kept_to_the_millime(subscriber, account, sandbox):
    assert _order(subscriber, account, sandbox, amount=Decimal("0.001")).amount == Decimal("0.001")


def test_a_closed_account_takes_no_order(subscriber, account, sandbox):
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.CLOSED)
    account.refresh_from_db()
    with pytest.raises(AccountClosed):
        _order(subscriber, account, sandbox, amount=Decimal("5"))


def test_a_provider_without_checkout_takes_no_order(subscriber, account):
    with pytest.raises(orders.OrderError):
        _order(subscriber, account, ProviderFactory(), amount=Decimal("5"))


def test_references_are_unique_in_the_database(subscriber, account, sandbox):
    order = _order(subscriber, account, sandbox, amount=Decimal("5"))
    with pytest.raises(IntegrityError):
        PaymentOrder.objects.create(
            subscriber=subscriber, account=account, provider=sandbox, reference=order.reference,
            amount=Decimal("1"), currency="TND", expires_at=timezone.now(),
        )  # fmt: skip


def test_completing_twice_applies_one_payment(subscriber, account, bills, sandbox):
    order = _order(subscriber, account, sandbox, bills=bills)
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    first = orders.order_complete(order=order)
    second = orders.order_complete(order=order)
    assert first.status == second.status == PaymentOrder.Status.PAID
    assert Payment.objects.filter(reference=order.reference).count() == 1
    assert sum(b.amount_due for b in Bill.objects.filter(account=account)) == 0


def test_a_payment_the_bank_reported_is_adopted_not_applied_again(subscriber, account, bills, sandbox):
    order = _order(subscriber, account, sandbox, bills=bills[:1])
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    payment = _bank_pays(order)
    order = orders.order_refresh(order=order)
    assert order.status == PaymentOrder.Status.PAID and order.payment == payment
    assert Payment.objects.count() == 1


def test_an_order_paid_less_than_asked_is_not_shown_as_paid(subscriber, account, bills, sandbox):
    order = _order(subscriber, account, sandbox, bills=bills)
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    _bank_pays(order, amount=Decimal("1.000"))
    order = orders.order_refresh(order=order)
    assert order.status == PaymentOrder.Status.FAILED and order.payment is not None


def test_an_abandoned_order_expires_with_nothing_applied(subscriber, account, bills, sandbox, clock):
    order = _order(subscriber, account, sandbox, bills=bills)
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    clock.move(dt.timedelta(minutes=29))
    assert orders.orders_expire() == 0
    clock.move(dt.timedelta(minutes=2))
    assert orders.orders_expire() == 1
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.EXPIRED
    assert not Payment.objects.exists()
    assert sum(b.amount_due for b in Bill.objects.filter(account=account)) == Decimal("119.000")


def test_a_late_payment_still_completes_an_order_at_expiry(subscriber, account, bills, sandbox, clock):
    order = _order(subscriber, account, sandbox, bills=bills)
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    _bank_pays(order)
    clock.move(dt.timedelta(hours=1))
    orders.orders_expire()
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID


def test_an_expired_order_is_seen_expired_when_read_before_the_task_runs(
    subscriber_client, subscriber, account, sandbox, clock
):
    order = _order(subscriber, account, sandbox, amount=Decimal("5"))
    orders.order_start(order=order, return_url="http://testserver/fr/pay/orders/x/")
    clock.move(dt.timedelta(minutes=31))
    response = subscriber_client.get(f"/fr/pay/orders/{order.reference}/")
    assert 'data-status="expired"' in response.text


def test_the_sandbox_adapter_sends_the_order_to_the_bank(subscriber, account, bills, sandbox):
    order = _order(subscriber, account, sandbox, bills=bills[:1])
    url = checkout_for(sandbox).start(order, return_url="http://shop.test/fr/pay/orders/x/")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (parts.netloc, parts.path) == ("shop.test", "/sandbox-bank/checkout/")
    assert query["reference"] == [order.reference]
    assert query["amount"] == ["59.500"] and query["bill"] == [bills[0].number]


# --- Pages ------------------------------------------------------------------


def test_the_pay_page_preselects_the_open_bills(subscriber_client, account, bills, sandbox):
    response = subscriber_client.get(f"/fr/accounts/{account.number}/pay/")
    assert response.status_code == 200
    for bill in bills:
        assert f'value="{bill.number}" checked' in response.text
    assert "Sandbox Bank" in response.text


def test_the_pay_page_of_one_bill_preselects_only_it(subscriber_client, account, bills, sandbox):
    response = subscriber_client.get(f"/fr/accounts/{account.number}/pay/?bill={bills[1].number}")
    assert f'value="{bills[1].number}" checked' in response.text
    assert f'value="{bills[0].number}" checked' not in response.text


def test_paying_creates_an_order_and_goes_to_the_bank(csrf_client, subscriber, account, bills, sandbox):
    page = csrf_client.get(f"/fr/accounts/{account.number}/pay/")
    token = page.cookies["csrftoken"].value
    response = csrf_client.post(
        f"/fr/accounts/{account.number}/pay/",
        {"bills": [bills[0].number], "provider": sandbox.pk, "csrfmiddlewaretoken": token},
    )
    order = PaymentOrder.objects.get()
    assert response.status_code == 302 and "/sandbox-bank/checkout/" in response["Location"]
    assert order.status == PaymentOrder.Status.PENDING and order.amount == bills[0].amount_due
    assert order.pay_url == response["Location"]


def test_a_pay_form_without_csrf_token_is_refused(csrf_client, account, bills, sandbox):
    response = csrf_client.post(
        f"/fr/accounts/{account.number}/pay/", {"bills": [bills[0].number], "provider": sandbox.pk}
    )
    assert response.status_code == 403
    assert not PaymentOrder.objects.exists()


def test_another_subscribers_bill_is_a_404(subscriber_client, account, other_subscriber, sandbox):
    bob_bill = BillFactory(account=ServiceAccountFactory(subscriber=other_subscriber))
    response = subscriber_client.post(
        f"/fr/accounts/{account.number}/pay/", {"bills": [bob_bill.number], "provider": sandbox.pk}
    )
    assert response.status_code == 404
    assert subscriber_client.get(f"/fr/accounts/{account.number}/pay/?bill={bob_bill.number}").status_code == 404
    assert not PaymentOrder.objects.exists()


def test_another_subscribers_account_order_and_receipt_are_404(client, other_subscriber, subscriber, account, sandbox):
    order = _order(subscriber, account, sandbox, amount=Decimal("5"))
    orders.order_start(order=order, return_url="http://testserver/x/")
    payment = orders.order_complete(order=order).payment
    client.force_login(other_subscriber.user)
    for path in (
        f"/fr/accounts/{account.number}/pay/",
        f"/fr/accounts/{account.number}/payments/",
        f"/fr/pay/orders/{order.reference}/",
        f"/fr/receipts/{payment.receipt_number}/",
        f"/fr/receipts/{payment.receipt_number}/print/",
    ):
        assert client.get(path).status_code == 404, path


def test_a_bad_amount_is_explained_in_the_page(subscriber_client, account, sandbox):
    response = subscriber_client.post(f"/fr/accounts/{account.number}/pay/", {"amount": "0", "provider": sandbox.pk})
    assert response.status_code == 200 and 'role="alert"' in response.text
    assert not PaymentOrder.objects.exists()


def test_a_closed_account_cannot_be_paid_from_the_page(subscriber_client, account, sandbox):
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.CLOSED)
    response = subscriber_client.post(f"/fr/accounts/{account.number}/pay/", {"amount": "5", "provider": sandbox.pk})
    assert response.status_code == 200 and "fermé" in response.text
    assert not PaymentOrder.objects.exists()


@pytest.mark.parametrize(
    ("language", "direction", "title"), [("ar", "rtl", "إيصال الدفع"), ("fr", "ltr", "Reçu de paiement")]
)
def test_receipt_history_and_result_pages_in_arabic_and_french(
    subscriber_client, subscriber, account, bills, sandbox, language, direction, title
):
    order = _order(subscriber, account, sandbox, bills=bills)
    orders.order_start(order=order, return_url="http://testserver/x/")
    payment = orders.order_complete(order=order).payment
    receipt = subscriber_client.get(f"/{language}/receipts/{payment.receipt_number}/")
    assert f'dir="{direction}"' in receipt.text and title in receipt.text
    printable = subscriber_client.get(f"/{language}/receipts/{payment.receipt_number}/print/")
    assert "<script" not in printable.text and "style=" not in printable.text and "receipt.css" in printable.text
    history = subscriber_client.get(f"/{language}/accounts/{account.number}/payments/")
    assert payment.receipt_number in history.text
    result = subscriber_client.get(f"/{language}/pay/orders/{order.reference}/")
    assert 'data-status="paid"' in result.text and f"/receipts/{payment.receipt_number}/" in result.text


def test_cancelling_at_the_bank_cancels_the_order(subscriber_client, subscriber, account, sandbox):
    order = _order(subscriber, account, sandbox, amount=Decimal("5"))
    orders.order_start(order=order, return_url="http://testserver/x/")
    response = subscriber_client.get(f"/fr/pay/orders/{order.reference}/?outcome=cancelled")
    assert 'data-status="cancelled"' in response.text
    assert not Payment.objects.exists()
