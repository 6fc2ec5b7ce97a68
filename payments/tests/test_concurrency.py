"""Payments under real concurrency on PostgreSQL: threads on their own connections,
released together by a barrier, through the whole API (signature, inbox, service)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test import Client

from billing.models import Bill, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.testing import run_at_once
from payments.models import Allocation, ApiInbox, Payment
from payments.services import payment_apply

from .factories import call

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 50


def _body(account, reference: str, amount: str) -> dict:
    return {"reference": reference, "account_number": account.number, "amount": amount, "currency": "TND",
            "paid_at": "2026-12-02T14:00:00+01:00"}  # fmt: skip


@pytest.fixture
def account(subscriber):
    account = ServiceAccountFactory(subscriber=subscriber)
    for month in (7, 8, 9):
        BillFactory(account=account, period=dt.date(2026, month, 1))
    return account


def test_fifty_copies_of_one_payment_apply_once_and_get_identical_answers(bank, account):
    # Kill Bill #639: a second capture under the same key while the first is unknown.
    body = _body(account, "SAME-REF", "20.000")
    responses = run_at_once([lambda: call(Client(), "POST", "/api/v1/payments", body, provider=bank)] * THREADS)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], statuses
    assert len({r.content for r in responses}) == 1
    assert Payment.objects.count() == 1
    assert Bill.objects.aggregate(paid=Sum("amount_paid"))["paid"] == Decimal("20.000")
    assert ApiInbox.objects.filter(status=ApiInbox.Status.SUCCEEDED).count() == THREADS


def test_one_reference_with_fifty_different_bodies_applies_one_of_them(bank, account):
    bodies = [_body(account, "RACE", f"{i + 1}.000") for i in range(THREADS)]
    responses = run_at_once([lambda b=b: call(Client(), "POST", "/api/v1/payments", b, provider=bank) for b in bodies])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1), statuses
    payment = Payment.objects.get()
    assert Bill.objects.aggregate(paid=Sum("amount_paid"))["paid"] == payment.amount


def test_fifty_different_payments_on_one_account_all_apply_exactly(bank, account):
    amounts = [Decimal("3.217") + Decimal(i) / 1000 for i in range(THREADS)]
    bodies = [_body(account, f"P-{i}", f"{a:f}") for i, a in enumerate(amounts)]
    responses = run_at_once([lambda b=b: call(Client(), "POST", "/api/v1/payments", b, provider=bank) for b in bodies])
    assert [r.status_code for r in responses] == [201] * THREADS, [r.content for r in responses if r.status_code != 201]
    total = sum(amounts)  # 162.075: less than the three bills' 178.500
    bills = list(Bill.objects.filter(account=account).order_by("period"))
    assert sum(b.amount_paid for b in bills) == total
    assert Allocation.objects.aggregate(s=Sum("amount"))["s"] == total
    for bill in bills:
        allocated = Allocation.objects.filter(bill=bill).aggregate(s=Sum("amount"))["s"] or 0
        assert allocated == bill.amount_paid <= bill.amount_total
        assert bill.amount_due == bill.amount_total - bill.amount_paid
    # Oldest first: the first two are paid, the last holds the rest.
    assert [b.status for b in bills] == [Bill.Status.PAID, Bill.Status.PAID, Bill.Status.PARTIALLY_PAID]
    assert ServiceAccount.objects.get(pk=account.pk).credit == 0
    assert len(set(Payment.objects.values_list("receipt_number", flat=True))) == THREADS


def test_fifty_payments_beyond_the_bills_leave_exact_credit(bank, account):
    bodies = [_body(account, f"C-{i}", "5.000") for i in range(THREADS)]
    responses = run_at_once([lambda b=b: call(Client(), "POST", "/api/v1/payments", b, provider=bank) for b in bodies])
    assert [r.status_code for r in responses] == [201] * THREADS
    bills_total = Decimal("178.500")
    assert Bill.objects.filter(account=account).aggregate(s=Sum("amount_paid"))["s"] == bills_total
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("250.000") - bills_total
    assert Payment.objects.aggregate(s=Sum("credit"))["s"] == Decimal("250.000") - bills_total


def test_a_payment_and_its_reversal_racing_leave_a_consistent_account(bank, account):
    call(Client(), "POST", "/api/v1/payments", _body(account, "R-1", "100.000"), provider=bank)
    reverse = lambda: call(Client(), "POST", "/api/v1/payments/R-1/reversal", {"reason": "dispute"}, provider=bank)  # noqa: E731
    pay = lambda i: call(Client(), "POST", "/api/v1/payments", _body(account, f"R-{i}", "10.000"), provider=bank)  # noqa: E731
    responses = run_at_once([reverse] * 10 + [lambda i=i: pay(i) for i in range(2, 12)])
    assert all(r.status_code in (200, 201) for r in responses), [r.content for r in responses]
    applied = Payment.objects.filter(status=Payment.Status.APPLIED).aggregate(s=Sum("amount"))["s"]
    assert applied == Decimal("100.000")
    assert Bill.objects.filter(account=account).aggregate(s=Sum("amount_paid"))["s"] == applied


def _apply(provider, account, reference: str):
    return payment_apply(provider=provider, reference=reference, account_number=account.number,
                         amount=Decimal("5.000"), currency="TND", paid_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))  # fmt: skip


def test_payments_to_two_accounts_do_not_wait_for_each_other(bank, subscriber):
    # Receipt numbers once came from one locked row, held until the payment
    # committed: every payment queued behind the one before, whatever its account.
    first, second = ServiceAccountFactory(subscriber=subscriber), ServiceAccountFactory(subscriber=subscriber)
    applied, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                _apply(bank, first, "HOLD")
                applied.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert applied.wait(timeout=60)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")  # a wait would fail, not hang
            result = _apply(bank, second, "FREE")
        assert result.created
    finally:
        release.set()
        holder.join(timeout=60)
    assert sorted(Payment.objects.values_list("reference", flat=True)) == ["FREE", "HOLD"]
