"""A credit carried by an estimate correction (billing/estimates.py) pays the
account's earlier open bills, oldest first, as a payment would
(services.account_credit_carry); only the rest stays as the account's credit.
Both paths, bill_issue and the set-based bill run, give the same answer.

Worked figures, on a plan of 1.000 a kWh, no monthly fee, no VAT:

- December and January read at 100 kWh each (indexes 1 000 and 1 100); January
  billed on its reading: 100.000, paid.
- February and March not read: billed on an estimate, the average of the last
  readings, 100 kWh = 100.000 each; March is unpaid and overdue, with the
  disconnection warning and order of the dunning ladder.
- April read at index 1 190 with 40 kWh for the month itself: 1 190 - 1 100 - 40
  = 50 kWh really used in February and March, priced 50.000, less the 200.000
  billed: a correction of -150.000 against 40.000 of April's own charges.
  April comes to zero and carries 110.000.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from billing import runs
from billing.dunning import dunning_run
from billing.models import Bill, BillLine, FieldOrder, Plan, ServiceAccount
from billing.runs import bill_run_chunk_process, bill_run_start, usage_for_billing
from billing.services import bill_issue, bills_flag_overdue
from core.dates import month_add

from .factories import ConsumptionFactory, PlanFactory, ServiceAccountFactory

TODAY = timezone.localdate()
APRIL = month_add(TODAY, -1)  # "April": the month the meter is read again
MARCH, FEB, JAN, DEC = (month_add(APRIL, -n) for n in (1, 2, 3, 4))
# Issued long enough ago for March to be 30 days overdue today (20 days to pay).
ISSUED = {JAN: TODAY - dt.timedelta(days=120), FEB: TODAY - dt.timedelta(days=90), MARCH: TODAY - dt.timedelta(days=75)}
MARCH_DUE = ISSUED[MARCH] + dt.timedelta(days=20)


@pytest.fixture(autouse=True)
def _operator(settings) -> None:
    settings.SELFCARE_VAT_RATE = "0"
    settings.SELFCARE_CURRENCY = "TND"
    settings.SELFCARE_PAYMENT_TERM_DAYS = 20


@pytest.fixture
def plan(db) -> Plan:
    return PlanFactory(code="E-FLAT", monthly_fee=Decimal("0.000"), tiers=[(0, None, "1.000")])


def read(account: ServiceAccount, period: dt.date, quantity: str, index: str) -> None:
    ConsumptionFactory(
        account=account, period=period, unit=account.unit, quantity=Decimal(quantity), meter_index=Decimal(index)
    )


def issue(account: ServiceAccount, period: dt.date, issue_date: dt.date = TODAY) -> Bill:
    usage, estimated = usage_for_billing(account=account, period=period)
    return bill_issue(account=account, period=period, issue_date=issue_date, usage=usage, estimated=estimated)


def run_april() -> None:
    run = bill_run_start(period=APRIL, issue_date=TODAY)
    for chunk_id in runs.bill_run_pending_chunks(run=run):
        bill_run_chunk_process(chunk_id=chunk_id)


def pay(bill: Bill) -> None:
    bill.set_amount_paid(bill.amount_total)
    bill.save()


def meter(plan: Plan, *, feb_paid: bool) -> ServiceAccount:
    """January to March billed (February and March on an estimate), March unpaid
    and 30 days overdue with its disconnection order; the reading of April in."""
    account = ServiceAccountFactory(plan=plan, opened_on=dt.date(2020, 1, 1))
    read(account, DEC, "100", "1000")
    read(account, JAN, "100", "1100")
    for period in (JAN, FEB, MARCH):
        bill = issue(account, period, ISSUED[period])
        assert bill.amount_total == Decimal("100.000")
        if period == JAN or (period == FEB and feb_paid):
            pay(bill)
    read(account, APRIL, "40", "1190")
    return account


def bill_of(account: ServiceAccount, period: dt.date) -> Bill:
    return Bill.objects.get(account=account, period=period)


def overdue_with_order(*accounts: ServiceAccount) -> None:
    bills_flag_overdue(today=TODAY)
    dunning_run(today=MARCH_DUE + dt.timedelta(days=15))  # the warning
    dunning_run(today=MARCH_DUE + dt.timedelta(days=30))  # the disconnection order
    for account in accounts:
        order = FieldOrder.objects.get(account=account, kind=FieldOrder.Kind.DISCONNECTION)
        assert order.status == FieldOrder.Status.TO_PRINT
        assert bill_of(account, MARCH).status == Bill.Status.OVERDUE


def twins(plan: Plan, *, feb_paid: bool) -> tuple[ServiceAccount, ServiceAccount]:
    """Two identical meters: April billed by bill_issue for one, by the run for the other."""
    by_issue, by_run = meter(plan, feb_paid=feb_paid), meter(plan, feb_paid=feb_paid)
    overdue_with_order(by_issue, by_run)
    issue(by_issue, APRIL)
    run_april()
    return by_issue, by_run


def state(account: ServiceAccount) -> dict:
    account.refresh_from_db()
    return {
        "credit": account.credit,
        "bills": {
            period: (b.amount_paid, b.amount_due, b.status)
            for period, b in ((p, bill_of(account, p)) for p in (FEB, MARCH, APRIL))
        },
        "order": FieldOrder.objects.get(account=account, kind=FieldOrder.Kind.DISCONNECTION).status,
    }


def audit_changes(instance) -> list[dict]:
    """The changes of the row's update entries, oldest first."""
    entries = LogEntry.objects.get_for_object(instance).filter(action=LogEntry.Action.UPDATE).order_by("pk")
    return [e.changes for e in entries]


def money_entries() -> int:
    """The trail's entries about bills and accounts (a run adds its own, of the run)."""
    return LogEntry.objects.filter(content_type__model__in=["bill", "serviceaccount"]).count()


def test_the_carried_credit_pays_the_overdue_march_and_cancels_the_disconnection(plan) -> None:
    # given: February paid, March (100.000) unpaid, overdue, its disconnection ordered
    by_issue, by_run = twins(plan, feb_paid=True)

    for account in (by_issue, by_run):
        april = bill_of(account, APRIL)
        # April: 40.000 - 150.000 = -110.000 -> the bill comes to zero, 110.000 carried
        assert april.lines.get(kind=BillLine.Kind.ESTIMATE_CORRECTION).amount == Decimal("-150.000")
        assert april.lines.get(kind=BillLine.Kind.CREDIT_CARRIED).amount == Decimal("110.000")
        assert (april.amount_total, april.amount_due) == (Decimal("0.000"), Decimal("0.000"))
        # then: March is paid by 100.000 of it, the 10.000 left is the account's credit,
        # and with nothing overdue any more the field team's order is cancelled
        assert state(account) == {
            "credit": Decimal("10.000"),
            "bills": {
                FEB: (Decimal("100.000"), Decimal("0.000"), Bill.Status.PAID),
                MARCH: (Decimal("100.000"), Decimal("0.000"), Bill.Status.PAID),
                APRIL: (Decimal("0.000"), Decimal("0.000"), Bill.Status.ISSUED),
            },
            "order": FieldOrder.Status.CANCELLED,
        }
        # and the trail says what moved: March's paid amount, the account's credit
        march = bill_of(account, MARCH)
        assert {
            "amount_paid": ["0.000", "100.000"],
            "amount_due": ["100.000", "0.000"],
            "status": ["overdue", "paid"],
        } in audit_changes(march)
        assert {"credit": ["0.000", "10.000"]} in audit_changes(account)


def test_a_carry_smaller_than_the_open_bills_pays_the_oldest_and_leaves_the_rest_due(plan) -> None:
    # given: February and March (100.000 each) both unpaid, March's disconnection ordered
    by_issue, by_run = twins(plan, feb_paid=False)

    for account in (by_issue, by_run):
        # then: the 110.000 pay February (100.000) then 10.000 of March, which still
        # asks 90.000 and stays overdue: no credit, the order stands
        assert state(account) == {
            "credit": Decimal("0.000"),
            "bills": {
                FEB: (Decimal("100.000"), Decimal("0.000"), Bill.Status.PAID),
                MARCH: (Decimal("10.000"), Decimal("90.000"), Bill.Status.OVERDUE),
                APRIL: (Decimal("0.000"), Decimal("0.000"), Bill.Status.ISSUED),
            },
            "order": FieldOrder.Status.TO_PRINT,
        }
        assert {"amount_paid": ["0.000", "10.000"], "amount_due": ["100.000", "90.000"]} in audit_changes(
            bill_of(account, MARCH)
        )
        # no change of the credit: no entry for it
        assert not [c for c in audit_changes(account) if "credit" in c]


def test_billing_april_again_changes_nothing(plan) -> None:
    by_issue, by_run = twins(plan, feb_paid=True)
    before = {a.pk: state(a) for a in (by_issue, by_run)}
    entries = money_entries()
    assert entries  # March's payment by the credit among them

    # when: the run is started again for April and the single bill issued again
    run_april()
    issue(by_issue, APRIL)

    # then: the same bills, the same credit (10.000, not 20.000), no new trail entry
    for account in (by_issue, by_run):
        assert state(account) == before[account.pk]
        assert state(account)["credit"] == Decimal("10.000")
        assert Bill.objects.filter(account=account).count() == 4
    assert money_entries() == entries
