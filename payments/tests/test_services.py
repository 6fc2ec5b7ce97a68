"""payment_apply and payment_reverse as other callers use them (a counter, a
wallet poller), and the account credit through the next bill."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from types import SimpleNamespace

import pytest
from auditlog.models import LogEntry
from django.apps import apps as django_apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from accounts.tests.factories import AgencyFactory
from billing.models import Bill, ServiceAccount, Unit
from billing.services import bill_issue
from billing.tests.factories import BillFactory, ConsumptionFactory, ServiceAccountFactory
from core.audit import audit_context
from core.models import Sequence
from payments.counter import counter_provider_for
from payments.models import Payment, Provider
from payments.services import (
    RECEIPT_SEQUENCE,
    InvalidAmount,
    ReferenceConflict,
    payment_apply,
    payment_reverse,
)

pytestmark = pytest.mark.django_db
PAID_AT = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def counter(db) -> Provider:
    return counter_provider_for(agency=AgencyFactory(code="TUN-C"))


def _apply(provider, account, reference="C-1", amount="10.000", **kw):
    return payment_apply(
        provider=provider, reference=reference, account_number=account.number, amount=Decimal(amount),
        currency="TND", paid_at=PAID_AT, **kw,
    )  # fmt: skip


def test_a_counter_payment_goes_through_the_same_service(counter):
    bill = BillFactory()
    result = _apply(counter, bill.account, amount="59.500", channel="cash")
    assert result.created
    assert result.response["allocations"] == [{"bill_number": bill.number, "amount": "59.500"}]
    assert Bill.objects.get(pk=bill.pk).status == Bill.Status.PAID
    again = _apply(counter, bill.account, amount="59.500", channel="cash")
    assert not again.created
    assert again.response == result.response
    with pytest.raises(ReferenceConflict):
        _apply(counter, bill.account, amount="59.500", channel="cheque")


def test_the_service_refuses_decimal_amounts_the_currency_cannot_hold(counter):
    account = ServiceAccountFactory()
    for amount in ("0", "-1", "1.0005", "1E+12", "NaN"):
        with pytest.raises(InvalidAmount):
            _apply(counter, account, amount=amount)
    assert _apply(counter, account, amount="1.5000").payment.amount == Decimal("1.500")


def test_a_naive_paid_at_is_refused(counter):
    account = ServiceAccountFactory()
    with pytest.raises(Exception, match="offset"):
        payment_apply(provider=counter, reference="N", account_number=account.number, amount=Decimal(1),
                      currency="TND", paid_at=dt.datetime(2026, 12, 2, 10, 0))  # fmt: skip


def test_receipt_numbers_follow_each_other(counter):
    account = ServiceAccountFactory()
    first = _apply(counter, account, reference="A").payment.receipt_number
    second = _apply(counter, account, reference="B").payment.receipt_number
    assert int(second[1:]) == int(first[1:]) + 1


def test_the_receipt_sequence_goes_on_after_the_numbers_the_counter_row_gave_out(counter):
    # Receipt numbers came from a core_sequence row before payments 0003; the
    # SEQUENCE that replaces it must never give one of those out again.
    migration = importlib.import_module("payments.migrations.0006_receipt_sequence")
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('payment_receipt')")
        last = cursor.fetchone()[0] + 1000
    Sequence.objects.update_or_create(name=RECEIPT_SEQUENCE, defaults={"last_value": last})
    migration.sequence_create(django_apps, SimpleNamespace(connection=connection))
    receipt = _apply(counter, ServiceAccountFactory()).payment.receipt_number
    assert receipt == f"R{last + 1:09d}"


def test_credit_pays_the_next_bill_when_it_is_issued(counter):
    account = ServiceAccountFactory()
    _apply(counter, account, amount="100.000")
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("100.000")
    ConsumptionFactory(account=account, period=dt.date(2026, 9, 1), unit=Unit.KWH, quantity=Decimal(180))

    bill = bill_issue(account=account, period=dt.date(2026, 9, 1), issue_date=dt.date(2026, 10, 5))

    bill.refresh_from_db()
    assert (bill.status, bill.amount_due, bill.amount_paid) == (Bill.Status.PAID, 0, bill.amount_total)
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("100.000") - bill.amount_total


def test_reversing_a_payment_whose_credit_a_later_bill_used_reopens_that_bill(counter):
    account = ServiceAccountFactory()
    _apply(counter, account, reference="EXTRA", amount="20.000")
    ConsumptionFactory(account=account, period=dt.date(2026, 9, 1), unit=Unit.KWH, quantity=Decimal(180))
    bill = bill_issue(account=account, period=dt.date(2026, 9, 1), issue_date=dt.date(2026, 10, 5))
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("20.000")  # all the credit went to the bill

    payment_reverse(provider=counter, reference="EXTRA", reason="cheque bounced")

    bill.refresh_from_db()
    assert (bill.amount_paid, bill.amount_due, bill.status) == (0, bill.amount_total, Bill.Status.ISSUED)
    assert ServiceAccount.objects.get(pk=account.pk).credit == 0
    assert Payment.objects.get(reference="EXTRA").status == Payment.Status.REVERSED


def test_reversing_keeps_an_overdue_bill_overdue_and_others_partially_paid(counter):
    bill = BillFactory(status=Bill.Status.OVERDUE)
    _apply(counter, bill.account, reference="P1", amount="10.000")
    _apply(counter, bill.account, reference="P2", amount="5.000")
    payment_reverse(provider=counter, reference="P2", reason="error")
    bill.refresh_from_db()
    assert (bill.amount_paid, bill.status) == (Decimal("10.000"), Bill.Status.OVERDUE)


def test_a_payment_leaves_an_entry_for_itself_its_allocations_its_bills_and_the_credit(counter, clerk):
    account = ServiceAccountFactory()
    old = BillFactory(account=account, period=dt.date(2026, 8, 1))
    new = BillFactory(account=account, period=dt.date(2026, 9, 1))
    last = LogEntry.objects.order_by("pk").last()
    with audit_context(actor=clerk, remote_addr="10.1.2.3"):
        result = _apply(counter, account, amount="125.000")  # two bills of 59.500 and 6.000 of credit
    entries = list(LogEntry.objects.filter(pk__gt=last.pk).order_by("pk"))
    kinds = sorted((e.content_type.model, e.action) for e in entries)
    assert kinds == sorted(
        [("payment", LogEntry.Action.CREATE)] + [("allocation", LogEntry.Action.CREATE)] * 2
        + [("bill", LogEntry.Action.UPDATE)] * 2 + [("serviceaccount", LogEntry.Action.UPDATE)]
    )  # fmt: skip
    by_object = {(e.content_type.model, e.object_id): e for e in entries}
    assert by_object["payment", result.payment.pk].changes["receipt_number"] == [None, result.payment.receipt_number]
    for bill in (old, new):
        assert by_object["bill", bill.pk].changes == {
            "amount_paid": ["0.000", "59.500"], "amount_due": ["59.500", "0.000"], "status": ["issued", "paid"],
        }  # fmt: skip
    assert by_object["serviceaccount", account.pk].changes == {"credit": ["0.000", "6.000"]}
    scope = {"agency_id": account.subscriber.agency_id, "subscriber_id": account.subscriber_id}
    assert all(e.additional_data == scope for e in entries)
    assert {(e.actor_id, e.remote_addr) for e in entries} == {(clerk.pk, "10.1.2.3")}


def test_a_replay_leaves_no_entry(counter):
    bill = BillFactory()
    _apply(counter, bill.account, amount="59.500")
    count = LogEntry.objects.count()
    assert not _apply(counter, bill.account, amount="59.500").created
    assert LogEntry.objects.count() == count
    assert LogEntry.objects.filter(content_type__model="payment").count() == 1


def test_a_payment_and_its_reversal_are_in_the_audit_trail_with_who_and_where(counter, clerk):
    bill = BillFactory()
    with audit_context(actor=clerk, remote_addr="10.1.2.3"):
        result = _apply(counter, bill.account, amount="59.500", channel="cash")
        payment_reverse(provider=counter, reference="C-1", reason="wrong account")
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Payment), object_id=result.payment.pk
    ).order_by("timestamp")
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert {e.actor_id for e in entries} == {clerk.pk}
    assert {e.remote_addr for e in entries} == {"10.1.2.3"}
    assert entries[1].changes_dict["status"] == ["applied", "reversed"]
    assert entries[0].additional_data["agency_id"] == bill.account.subscriber.agency_id
