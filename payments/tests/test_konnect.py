"""The Konnect wallet checkout against the fake gateway, a real HTTP server on
loopback: opening a checkout, the unsigned webhook (only a trigger), the poller,
payments that come late or wrong, Konnect down, and the saleor #14648/#19220
race of a webhook, the poller and the return page on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from accounts.models import Subscriber
from billing.models import Bill, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.testing import run_at_once
from notifications.models import Message
from payments import orders, tasks
from payments.checkout import CheckoutError
from payments.demo import KONNECT_NAME, konnect_provider_ensure
from payments.gateways.konnect import KonnectClient
from payments.gateways.konnect_fake import KonnectFake
from payments.models import Payment, PaymentOrder, Provider
from payments.tests.test_orders import Clock

API_KEY = "konnect-test-api-key"
WALLET_ID = "5f7a209aeb3f76490ac4a3d1"
WEBHOOK = "/payments/konnect/webhook"


# --- Fixtures and helpers -----------------------------------------------------


@pytest.fixture
def fake() -> Iterator[KonnectFake]:
    with KonnectFake(api_key=API_KEY, wallet_id=WALLET_ID) as gateway:
        yield gateway


@pytest.fixture
def konnect(db, settings, fake: KonnectFake) -> Provider:
    settings.DEBUG = True
    settings.KONNECT_API_URL = fake.url
    settings.KONNECT_API_KEY = API_KEY
    settings.KONNECT_WALLET_ID = WALLET_ID
    settings.KONNECT_TIMEOUT = 5
    return konnect_provider_ensure()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Our clock, moved forward by the test; the fake gateway keeps the real one."""
    shifted = Clock()
    monkeypatch.setattr(timezone, "now", shifted)
    return shifted


@pytest.fixture
def account(subscriber: Subscriber) -> ServiceAccount:
    account = ServiceAccountFactory(subscriber=subscriber)
    # A verified channel, so each payment writes its "payment received" message.
    subscriber.channels.get_or_create(
        kind="sms", address=subscriber.user.phone, defaults={"language": "fr", "verified_at": timezone.now()}
    )
    return account


@pytest.fixture
def bills(account: ServiceAccount) -> list[Bill]:
    return [
        BillFactory(account=account, period=dt.date(2026, 8, 1)),
        BillFactory(account=account, period=dt.date(2026, 9, 1), amount_due=Decimal("59.500")),
    ]


def _open(subscriber, account, konnect, *, bills=None, amount=None, site: str = "http://testserver") -> PaymentOrder:
    order = orders.order_create(subscriber=subscriber, account=account, provider=konnect, bills=bills, amount=amount)
    orders.order_start(order=order, return_url=f"{site}/fr/pay/orders/{order.reference}/")
    order.refresh_from_db()
    return order


def _status_reads(fake: KonnectFake) -> int:
    """How many times Selfcare asked the gateway about a payment."""
    with fake.lock:
        return sum(1 for method, path in fake.requests if method == "GET" and path.startswith("/api/v2/payments/"))


def _hook(client: Client, payment_ref: str):
    return client.get(WEBHOOK, {"payment_ref": payment_ref})


def _due(account: ServiceAccount) -> Decimal:
    return Bill.objects.filter(account=account).aggregate(due=Sum("amount_due"))["due"]


# --- Opening a checkout -------------------------------------------------------


def test_paying_with_konnect_opens_a_checkout_there_and_keeps_its_payment_ref(csrf_client, konnect, fake, bills):
    page = csrf_client.get(f"/fr/accounts/{bills[0].account.number}/pay/")
    assert KONNECT_NAME in page.text
    response = csrf_client.post(
        f"/fr/accounts/{bills[0].account.number}/pay/",
        {
            "bills": [b.number for b in bills],
            "provider": konnect.pk,
            "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
        },
    )
    order = PaymentOrder.objects.get()
    # then: the subscriber goes to Konnect's payUrl; we keep Konnect's paymentRef
    assert response.status_code == 302 and response["Location"] == order.pay_url
    assert order.status == PaymentOrder.Status.PENDING
    assert order.provider_ref in fake.payments
    assert response["Location"].startswith(f"{fake.url}/pay?payment_ref={order.provider_ref}")
    sent = fake.payments[order.provider_ref]["request"]
    result_url = f"http://testserver/fr/pay/orders/{order.reference}/"
    assert sent == {
        "receiverWalletId": WALLET_ID,
        "token": "TND",
        "amount": 119_000,  # millimes, an integer
        "type": "immediate",
        "description": sent["description"],
        "acceptedPaymentMethods": ["wallet", "bank_card", "e-DINAR"],
        "lifespan": sent["lifespan"],
        "checkoutForm": False,
        "addPaymentFeesToAmount": False,
        "orderId": order.reference,
        "webhook": "http://testserver/payments/konnect/webhook",
        "successUrl": result_url,
        "failUrl": result_url,
        "theme": "light",
    }
    assert 28 <= sent["lifespan"] <= 30  # minutes, never past our order's expiry
    assert order.reference in sent["description"] and "paiement" in sent["description"]  # the page's language
    assert not Payment.objects.exists()


def test_the_amount_goes_to_konnect_in_millimes_exactly(konnect, fake, subscriber, account):
    order = _open(subscriber, account, konnect, amount=Decimal("0.001"))
    assert fake.payments[order.provider_ref]["request"]["amount"] == 1


def test_the_pay_page_lets_its_form_lead_to_konnect_and_nowhere_else(subscriber_client, konnect, fake, account):
    # A form's redirect is held to the page's form-action: with 'self' alone the
    # browser would stop at the wallet's door (net::ERR_ABORTED).
    policy = subscriber_client.get(f"/fr/accounts/{account.number}/pay/")["Content-Security-Policy"]
    (form_action,) = [d.split()[1:] for d in policy.split(";") if d.split()[:1] == ["form-action"]]
    assert sorted(form_action) == sorted(["'self'", fake.url, "https://gateway.konnect.network"])


@pytest.mark.parametrize("trouble", ["down", "wrong_key", "broken_answer", "unreachable", "foreign_pay_url"])
def test_konnect_refusing_the_checkout_is_explained_and_nothing_is_left_open(
    subscriber_client, konnect, fake, bills, settings, monkeypatch, trouble
):
    if trouble == "foreign_pay_url":
        monkeypatch.setattr(fake, "pay_url", lambda ref: f"https://konnect.evil.example/pay?payment_ref={ref}")
    elif trouble == "down":
        fake.unavailable = True
    elif trouble == "wrong_key":
        settings.KONNECT_API_KEY = "not-the-key"
    elif trouble == "broken_answer":
        fake.answer_with = (200, b"<html>maintenance</html>")
    else:
        settings.KONNECT_API_URL = _closed_port_url()
    response = subscriber_client.post(
        f"/fr/accounts/{bills[0].account.number}/pay/", {"bills": [bills[0].number], "provider": konnect.pk}
    )
    assert response.status_code == 200 and 'role="alert"' in response.text
    assert "ne peut pas être joint" in response.text  # French: the page's language
    order = PaymentOrder.objects.get()
    assert order.status == PaymentOrder.Status.FAILED and order.error.startswith("could not start")
    assert order.provider_ref is None and not Payment.objects.exists()


def test_konnect_is_not_offered_without_an_api_key(subscriber_client, konnect, settings, subscriber, account):
    settings.KONNECT_API_KEY = ""
    page = subscriber_client.get(f"/fr/accounts/{account.number}/pay/")
    assert KONNECT_NAME not in page.text
    with pytest.raises(orders.OrderError):
        orders.order_create(subscriber=subscriber, account=account, provider=konnect, amount=Decimal("5"))


# --- The webhook: only a trigger ---------------------------------------------


def test_a_webhook_while_konnect_says_pending_applies_nothing(client, konnect, fake, subscriber, bills):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    response = _hook(client, order.provider_ref)
    assert response.status_code == 200 and response.json() == {"received": True}
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PENDING and order.checked_at is not None
    assert _status_reads(fake) == 1
    assert not Payment.objects.exists() and _due(bills[0].account) == Decimal("119.000")


def test_a_webhook_after_paying_applies_what_konnect_says_once(client, konnect, fake, subscriber, bills):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    assert fake.pay(order.provider_ref, notify=False)
    # when: the same webhook three times (Konnect repeats itself)
    for _ in range(3):
        assert _hook(client, order.provider_ref).status_code == 200
    # then: one payment, for what Konnect reported, bills paid once, one message
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID
    payment = Payment.objects.get()
    assert (payment.reference, payment.amount, payment.channel) == (order.reference, Decimal("119.000"), "checkout")
    assert order.payment == payment and _due(bills[0].account) == 0
    assert Message.objects.filter(event="payment_received").count() == 1
    # a paid order is not asked about again
    assert _status_reads(fake) == 1


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?payment_ref=",
        "?payment_ref=a&payment_ref=b",
        "?payment_ref=../../admin",
        "?payment_ref=" + "a" * 129,
        "?payment_ref=%D8%A7%D9%84%D8%AF%D9%81%D8%B9",
        "?paymentRef=6392d70408ac861bcea30337",
    ],
)
def test_the_webhook_refuses_a_missing_repeated_or_malformed_payment_ref(client, konnect, fake, query):
    response = client.get(WEBHOOK + query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert _status_reads(fake) == 0


def test_a_nul_in_the_payment_ref_is_refused_before_the_webhook(client, konnect, fake):
    # The project's request guard (core.middleware) answers it, as for every path.
    assert client.get(WEBHOOK + "?payment_ref=abc%00def").status_code == 400
    assert _status_reads(fake) == 0


def test_the_webhook_for_an_unknown_payment_is_a_404_and_asks_konnect_nothing(client, konnect, fake):
    response = _hook(client, "6392d70408ac861bcea30337")
    assert response.status_code == 404 and response.json()["error"]["code"] == "payment_not_found"
    assert _status_reads(fake) == 0


def test_the_webhook_takes_no_post_and_sets_no_session(client, konnect, fake, subscriber, account):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    assert client.post(WEBHOOK + f"?payment_ref={order.provider_ref}").status_code == 405
    response = _hook(Client(enforce_csrf_checks=True), order.provider_ref)
    assert response.status_code == 200 and not response.cookies


def test_the_webhook_is_throttled_per_payment(client, konnect, fake, subscriber, account, settings):
    settings.KONNECT_WEBHOOK_PER_PAYMENT = 2
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    assert [_hook(client, order.provider_ref).status_code for _ in range(3)] == [200, 200, 429]
    assert _status_reads(fake) == 2


@pytest.mark.parametrize("trouble", ["down", "unreachable", "broken_answer"])
def test_konnect_down_the_webhook_answers_503_and_the_poller_applies_it_later(
    client, konnect, fake, subscriber, bills, settings, trouble
):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    fake.pay(order.provider_ref, notify=False)
    api_url = settings.KONNECT_API_URL
    if trouble == "down":
        fake.unavailable = True
    elif trouble == "unreachable":
        settings.KONNECT_API_URL = _closed_port_url()
    else:
        fake.answer_with = (200, b'{"payment": ')
    # when: the webhook comes while Konnect cannot be asked
    response = _hook(client, order.provider_ref)
    # then: 503 (retry later), never a 500, nothing applied
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert response.json()["error"]["code"] == "provider_unavailable"
    assert not Payment.objects.exists()
    assert orders.orders_poll(now=timezone.now() + dt.timedelta(minutes=1))["unreachable"] == 1
    # when: Konnect is back, the next poll applies it
    fake.answer_with, settings.KONNECT_API_URL = None, api_url
    counts = orders.orders_poll(now=timezone.now() + dt.timedelta(minutes=2))
    assert counts["applied"] == 1
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID and _due(bills[0].account) == 0
    assert Payment.objects.count() == 1


# --- What Konnect says, checked --------------------------------------------------


def test_another_amount_from_konnect_is_applied_as_reported_but_the_order_is_not_paid(
    client, konnect, fake, subscriber, bills
):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    fake.pay(order.provider_ref, amount=1_000, notify=False)  # 1.000 TND instead of 119.000
    assert _hook(client, order.provider_ref).status_code == 200
    order.refresh_from_db()
    # the money that left the wallet is applied as Konnect said; the order is not "paid"
    assert order.status == PaymentOrder.Status.FAILED and "differs" in order.error
    assert order.payment.amount == Decimal("1.000")
    assert _due(bills[0].account) == Decimal("118.000")


@pytest.mark.parametrize(
    ("field", "value"),
    [("orderId", "PO0000000000000000000"), ("token", "EUR"), ("amount", "119000"), ("amount", 0), ("amount", None)],
)
def test_a_completed_payment_that_does_not_add_up_is_never_applied(
    client, konnect, fake, subscriber, account, field, value
):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    fake.pay(order.provider_ref, notify=False)
    fake.payments[order.provider_ref][field] = value
    assert _hook(client, order.provider_ref).status_code == 503
    assert not Payment.objects.exists()
    assert PaymentOrder.objects.get().status == PaymentOrder.Status.PENDING


def test_konnect_saying_expired_ends_the_order_with_nothing_applied(client, konnect, fake, subscriber, account):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    fake.payments[order.provider_ref]["expires_at"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert _hook(client, order.provider_ref).status_code == 200
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.EXPIRED and order.error == "expired at Konnect"
    assert not Payment.objects.exists()


def test_a_payment_for_an_account_closed_since_is_kept_in_sight_not_lost(client, konnect, fake, subscriber, account):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    fake.pay(order.provider_ref, notify=False)
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.CLOSED)
    assert _hook(client, order.provider_ref).status_code == 200
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.FAILED and "account_closed" in order.error
    assert not Payment.objects.exists()
    # it stays on the late check's list while staff sort it out
    assert orders.order_late_check_due(order=order)


# --- The poller and late payments ------------------------------------------------


def test_the_poller_applies_a_payment_whose_webhook_never_came(konnect, fake, subscriber, bills):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    assert orders.orders_poll() == {"asked": 1, "applied": 0, "unreachable": 0, "errors": 0}
    fake.pay(order.provider_ref, notify=False)
    # asked a moment ago: the next run leaves it alone
    assert orders.orders_poll()["asked"] == 0
    assert orders.orders_poll(now=timezone.now() + dt.timedelta(seconds=61))["applied"] == 1
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID and _due(bills[0].account) == 0


def test_a_payment_completed_after_the_order_expired_is_applied_by_the_poller(
    konnect, fake, subscriber, bills, clock: Clock
):
    order = _open(subscriber, bills[0].account, konnect, bills=bills)
    # given: our order expires (the subscriber was slow)
    clock.move(dt.timedelta(minutes=31))
    assert orders.orders_expire() == 1
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.EXPIRED and _due(bills[0].account) == Decimal("119.000")
    # when: the wallet completes it anyway (its clock, its lifespan), with no webhook,
    # and the customer does not come back
    assert fake.pay(order.provider_ref, notify=False)
    clock.move(dt.timedelta(minutes=10))
    counts = orders.orders_poll()
    # then: the poller's late check applies it, not lost
    assert counts["applied"] == 1
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID and order.payment.amount == Decimal("119.000")
    assert _due(bills[0].account) == 0


def test_a_late_webhook_for_an_expired_order_applies_it_too(client, konnect, fake, subscriber, account, clock: Clock):
    order = _open(subscriber, account, konnect, amount=Decimal("7.250"))
    clock.move(dt.timedelta(minutes=31))
    orders.orders_expire()
    fake.pay(order.provider_ref, notify=False)
    assert _hook(client, order.provider_ref).status_code == 200
    assert PaymentOrder.objects.get().status == PaymentOrder.Status.PAID
    assert Payment.objects.get().amount == Decimal("7.250")


def test_the_customer_sent_back_after_a_late_payment_sees_it_paid_at_once(
    subscriber_client, konnect, fake, subscriber, account, clock: Clock
):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    clock.move(dt.timedelta(minutes=31))
    orders.orders_expire()
    fake.pay(order.provider_ref, notify=False)
    # Konnect redirects to successUrl: the result page asks it, even for an expired order
    page = subscriber_client.get(f"/fr/pay/orders/{order.reference}/?payment_ref={order.provider_ref}")
    assert 'data-status="paid"' in page.text
    assert Payment.objects.get().amount == Decimal("5.000")


def test_ended_orders_are_asked_every_ten_minutes_for_a_day_then_left_alone(
    konnect, fake, subscriber, account, clock: Clock
):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    clock.move(dt.timedelta(minutes=31))
    orders.orders_expire()  # asks Konnect one last time
    reads = _status_reads(fake)
    assert orders.orders_poll()["asked"] == 0
    clock.move(dt.timedelta(minutes=10))
    assert orders.orders_poll()["asked"] == 1
    clock.move(dt.timedelta(minutes=5))
    assert orders.orders_poll()["asked"] == 0
    clock.move(dt.timedelta(minutes=6))
    assert orders.orders_poll()["asked"] == 1
    clock.move(dt.timedelta(hours=24))
    assert orders.orders_poll()["asked"] == 0
    assert _status_reads(fake) == reads + 2
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.EXPIRED and not Payment.objects.exists()


def test_the_poll_task_runs_the_service(konnect, fake, subscriber, account):
    order = _open(subscriber, account, konnect, amount=Decimal("5"))
    fake.pay(order.provider_ref, notify=False)
    assert tasks.orders_poll.delay().get()["applied"] == 1


# --- End to end over HTTP, and the race ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_paying_at_the_fake_konnect_page_applies_the_order_once_through_its_webhook(
    live_server, konnect, fake, subscriber, bills
):
    order = _open(subscriber, bills[0].account, konnect, bills=bills, site=live_server.url)
    page = _http(order.pay_url)
    assert page[0] == 200 and "119.000 TND" in page[2]
    # when: the payer clicks "Pay", twice (a double click)
    for _ in range(2):
        status, headers, _body = _http(f"{fake.url}/pay", {"payment_ref": order.provider_ref, "action": "pay"})
        assert status == 303
        assert (
            headers["Location"]
            == f"{live_server.url}/fr/pay/orders/{order.reference}/?payment_ref={order.provider_ref}"
        )
    fake.wait_webhooks()
    # then: Konnect called our webhook once, over HTTP, and it was applied once
    assert [status for _url, status in fake.webhook_calls] == [200]
    order.refresh_from_db()
    assert order.status == PaymentOrder.Status.PAID
    assert Payment.objects.count() == 1 and _due(bills[0].account) == 0
    # and the return page, loaded twice, shows it paid without a second payment
    browser = Client()
    browser.force_login(subscriber.user)
    for _ in range(2):
        assert 'data-status="paid"' in browser.get(f"/fr/pay/orders/{order.reference}/").text
    assert Payment.objects.count() == 1
    assert Message.objects.filter(event="payment_received").count() == 1


@pytest.mark.django_db(transaction=True)
def test_cancelling_at_the_fake_konnect_page_leaves_the_order_open_and_payable(
    live_server, konnect, fake, subscriber, account
):
    order = _open(subscriber, account, konnect, amount=Decimal("5"), site=live_server.url)
    status, headers, _body = _http(f"{fake.url}/pay", {"payment_ref": order.provider_ref, "action": "cancel"})
    assert status == 303 and headers["Location"].startswith(f"{live_server.url}/fr/pay/orders/{order.reference}/")
    browser = Client()
    browser.force_login(subscriber.user)
    result = browser.get(f"/fr/pay/orders/{order.reference}/").text
    assert 'data-status="pending"' in result and order.pay_url.replace("&", "&amp;") in result
    assert not Payment.objects.exists() and fake.webhook_calls == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_a_webhook_the_poller_and_the_return_page_racing_apply_the_payment_once(konnect, fake, subscriber, round_):
    # saleor #14648, #19220: a webhook and the checkout's completion racing added the amount twice.
    account = ServiceAccountFactory(subscriber=subscriber)
    subscriber.channels.get_or_create(
        kind="sms", address=subscriber.user.phone, defaults={"language": "fr", "verified_at": timezone.now()}
    )
    bills = [BillFactory(account=account, period=dt.date(2026, m, 1)) for m in (7, 8)]
    order = _open(subscriber, account, konnect, bills=bills)
    fake.pay(order.provider_ref, notify=False)
    page = Client()
    page.force_login(subscriber.user)
    racers: list[Callable[[], Any]] = [
        *[lambda: _hook(Client(), order.provider_ref).status_code] * 3,
        # the poller as if its pause since the last ask were over, so it asks too
        *[lambda: orders.orders_poll(now=timezone.now() + dt.timedelta(minutes=2))] * 2,
        *[lambda: "paid" in page.get(f"/fr/pay/orders/{order.reference}/").text] * 3,
    ]
    results = run_at_once(racers)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results[:3] == [200, 200, 200]
    # then: one Payment, the bills paid once (to the millime), one message
    assert Payment.objects.count() == 1
    assert Payment.objects.get().amount == Decimal("119.000")
    assert Bill.objects.filter(account=account).aggregate(paid=Sum("amount_paid"))["paid"] == Decimal("119.000")
    assert _due(account) == 0 and ServiceAccount.objects.get(pk=account.pk).credit == 0
    assert Message.objects.filter(event="payment_received").count() == 1
    assert PaymentOrder.objects.get().status == PaymentOrder.Status.PAID


# --- The client, and the fake as an honest stand-in -------------------------------


def test_the_client_never_follows_a_redirect_with_our_api_key():
    seen: list[str | None] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("x-api-key"))
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = KonnectClient(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", timeout=5)
        with pytest.raises(CheckoutError, match="redirect"):
            client.payment_get("6392d70408ac861bcea30337")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["k"]  # asked once; the redirect's target never got the key


def test_the_client_refuses_a_payment_ref_that_would_change_its_path():
    client = KonnectClient(base_url="http://127.0.0.1:9", api_key="k", timeout=1)
    with pytest.raises(CheckoutError, match="not a Konnect payment reference"):
        client.payment_get("../init-payment")


def test_the_fake_checks_the_key_and_the_body_as_konnect_does(fake):
    def post(body: Any, key: str = API_KEY) -> tuple[int, Any]:
        status, _headers, text = _http(
            f"{fake.url}/api/v2/payments/init-payment", json.dumps(body).encode(), headers={"x-api-key": key}
        )
        return status, json.loads(text)

    good = {"receiverWalletId": WALLET_ID, "token": "TND", "amount": 5000, "orderId": "PO1"}
    assert post(good, key="wrong")[0] == 401
    status, answer = post({**good, "amount": 5.5, "token": "GBP", "receiverWalletId": "other"})
    assert status == 400
    assert {e["field"] for e in answer["errors"]} == {"amount", "token", "receiverWalletId"}
    status, answer = post(good)
    assert status == 200 and set(answer) == {"payUrl", "paymentRef"}
    status, _h, text = _http(f"{fake.url}/api/v2/payments/{answer['paymentRef']}", headers={"x-api-key": API_KEY})
    assert status == 200 and json.loads(text)["payment"]["status"] == "pending"
    assert _http(f"{fake.url}/api/v2/payments/6392d70408ac861bcea30337", headers={"x-api-key": API_KEY})[0] == 404


def test_the_fake_takes_no_payment_once_its_lifespan_is_over(fake):
    ref = fake.init_payment({"receiverWalletId": WALLET_ID, "token": "TND", "amount": 5000, "lifespan": 1})[
        "paymentRef"
    ]
    fake.payments[ref]["expires_at"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert fake.status(ref) == "expired" and not fake.pay(ref)
    assert "expired" in _http(fake.pay_url(ref))[2]


def test_the_fake_gateway_command_runs_only_in_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("konnect_fake", "--port", "0")


def test_the_demo_seed_creates_the_konnect_provider_once(db, settings):
    settings.DEBUG = True
    for _ in range(2):
        call_command("seed_payments_demo", stdout=io.StringIO())
    konnect = Provider.objects.get(key_id="konnect")
    assert (konnect.name, konnect.kind) == (KONNECT_NAME, Provider.Kind.MOBILE_MONEY)


def _closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def _http(
    url: str, data: dict[str, str] | bytes | None = None, *, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: (status, headers, text)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    body = urlencode(data).encode() if isinstance(data, dict) else data
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
