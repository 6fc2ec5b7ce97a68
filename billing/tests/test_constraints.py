"""The database, not only Python, refuses impossible billing rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing.models import Bill, Consumption, ServiceAccount, ServiceKind

from .factories import BillFactory, ConsumptionFactory, PlanFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


def _refused(**changes) -> bool:
    bill = BillFactory()
    try:
        with transaction.atomic():
            Bill.objects.filter(pk=bill.pk).update(**changes)
    except IntegrityError:
        return True
    return False


def test_one_bill_per_account_and_period() -> None:
    bill = BillFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        BillFactory(account=bill.account, period=bill.period, number="other-number")


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_total": Decimal("60.000")},  # total must be lines + tax
        {"amount_due": Decimal("1.000")},  # due must be total - paid
        {"amount_paid": Decimal("70.000"), "amount_due": Decimal("-10.500")},  # cannot pay more than the total
        {"status": Bill.Status.PAID},  # paid with something still due
        {"period": dt.date(2026, 9, 15)},  # a period is a month
        {"due_date": dt.date(2020, 1, 1)},  # due before it was issued
    ],
)
def test_inconsistent_bill_amounts_are_refused(changes: dict) -> None:
    assert _refused(**changes)


def test_a_consistent_partial_payment_is_accepted() -> None:
    assert not _refused(amount_paid=Decimal("9.500"), amount_due=Decimal("50.000"), status=Bill.Status.PARTIALLY_PAID)


def test_account_numbers_are_ten_digits() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceAccountFactory(number="12345")


def test_consumption_is_unique_per_account_period_and_unit() -> None:
    row = ConsumptionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consumption.objects.create(account=row.account, period=row.period, unit=row.unit, quantity=Decimal(1))


def test_a_utility_plan_cannot_carry_telecom_allowances() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanFactory(kind=ServiceKind.WATER, included_minutes=100)


def test_an_account_with_bills_cannot_be_deleted() -> None:
    bill = BillFactory()
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        ServiceAccount.objects.filter(pk=bill.account_id).delete()


def test_the_open_bills_index_covers_exactly_the_open_statuses() -> None:
    from billing.models import Bill

    index = next(i for i in Bill._meta.indexes if i.name == "bill_open_idx")
    statuses = dict(index.condition.children)["status__in"]
    assert sorted(statuses) == sorted(Bill.OPEN_STATUSES)
