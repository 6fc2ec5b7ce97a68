from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import Bill, ServiceAccount, Unit
from billing.numbers import account_number_clean
from billing.services import account_open, bill_issue, bills_flag_overdue
from core.exceptions import ApplicationError
from core.testing import run_in_threads

from .factories import BillFactory, ConsumptionFactory, PlanFactory, ServiceAccountFactory


@pytest.mark.django_db
def test_bill_issue_prices_the_period_and_adds_vat(settings) -> None:
    settings.SELFCARE_VAT_RATE = "0.19"
    account = ServiceAccountFactory()
    ConsumptionFactory(account=account, period=dt.date(2026, 9, 1), unit=Unit.KWH, quantity=Decimal(180))

    bill = bill_issue(account=account, period=dt.date(2026, 9, 1), issue_date=dt.date(2026, 10, 5))

    assert bill.number == f"{account.number}-202609"
    assert bill.amount_lines == Decimal("22.780")
    assert bill.amount_tax == Decimal("4.328")  # 19 % of 22.780 = 4.3282
    assert bill.amount_total == bill.amount_due == Decimal("27.108")
    assert bill.due_date == dt.date(2026, 10, 25)
    assert bill.status == Bill.Status.ISSUED
    assert bill.lines.count() == 4


@pytest.mark.django_db
def test_issuing_the_same_period_twice_returns_the_same_bill() -> None:
    account = ServiceAccountFactory()
    first = bill_issue(account=account, period=dt.date(2026, 9, 14))
    second = bill_issue(account=account, period=dt.date(2026, 9, 1))
    assert first.pk == second.pk
    assert Bill.objects.filter(account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_of_one_period_make_one_bill() -> None:
    # given an account, and eight workers told to bill September at once
    account = ServiceAccountFactory()
    ConsumptionFactory(account=account, period=dt.date(2026, 9, 1), quantity=Decimal(90))
    results: list[int] = []

    errors = run_in_threads(lambda: results.append(bill_issue(account=account, period=dt.date(2026, 9, 1)).pk), 8)

    # then one bill exists, with one set of lines, and every worker got it
    assert errors == []
    assert Bill.objects.filter(account=account).count() == 1
    assert len(set(results)) == 1
    assert Bill.objects.get(account=account).lines.count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_account_openings_never_share_a_number() -> None:
    plan = PlanFactory()
    subscriber = ServiceAccountFactory(plan=plan).subscriber
    errors = run_in_threads(
        lambda: account_open(subscriber=subscriber, plan=plan, meter_number="M1", service_address="Tunis"), 6
    )

    assert errors == []
    numbers = list(ServiceAccount.objects.filter(subscriber=subscriber).values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 7
    assert all(account_number_clean(n) == n for n in numbers)


@pytest.mark.django_db
def test_a_retired_plan_cannot_be_opened() -> None:
    plan = PlanFactory(is_active=False)
    subscriber = ServiceAccountFactory().subscriber
    with pytest.raises(ApplicationError) as excinfo:
        account_open(subscriber=subscriber, plan=plan, meter_number="M1", service_address="Tunis")
    assert excinfo.value.code == "plan_retired"


@pytest.mark.django_db
def test_the_overdue_sweep_flags_only_unpaid_bills_past_due() -> None:
    today = dt.date(2026, 11, 21)
    late = BillFactory(period=dt.date(2026, 9, 1), due_date=dt.date(2026, 10, 25))
    partly = BillFactory(period=dt.date(2026, 8, 1), due_date=dt.date(2026, 9, 25))
    partly.set_amount_paid(Decimal("10.000"))
    partly.save()
    paid = BillFactory(period=dt.date(2026, 7, 1), due_date=dt.date(2026, 8, 25))
    paid.set_amount_paid(paid.amount_total)
    paid.save()
    not_yet = BillFactory(period=dt.date(2026, 10, 1), due_date=dt.date(2026, 11, 25))

    assert bills_flag_overdue(today=today) == 2
    assert bills_flag_overdue(today=today) == 0  # running it again changes nothing

    statuses = {b.pk: b.status for b in Bill.objects.all()}
    assert statuses[late.pk] == statuses[partly.pk] == Bill.Status.OVERDUE
    assert statuses[paid.pk] == Bill.Status.PAID
    assert statuses[not_yet.pk] == Bill.Status.ISSUED


def test_paying_moves_amount_due_and_status_together() -> None:
    bill = Bill(amount_total=Decimal("59.500"), amount_paid=Decimal(0), amount_due=Decimal("59.500"))
    bill.status = Bill.Status.ISSUED
    bill.set_amount_paid(Decimal("20.000"))
    assert (bill.amount_due, bill.status) == (Decimal("39.500"), Bill.Status.PARTIALLY_PAID)
    bill.set_amount_paid(Decimal("59.500"))
    assert (bill.amount_due, bill.status) == (Decimal("0.000"), Bill.Status.PAID)
