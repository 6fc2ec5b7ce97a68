"""Estimated bills corrected by the next real reading (billing/estimates.py), on
worked figures: the bill run (SQL) and bill_issue (one account) bill the same
correction line, a debit when the estimates fell short, a credit when they
overshot, and a bill whose credits outweigh its charges comes to zero with the
rest paying the earlier open bills, then the account's credit (test_credit_carry)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import runs
from billing.estimates import estimate_correction_find
from billing.models import Bill, BillLine, Plan, ServiceAccount
from billing.runs import bill_run_chunk_process, bill_run_start, usage_for_billing
from billing.services import bill_issue
from billing.tariffs import estimate_correction_line, plan_terms
from core.dates import month_add

from .factories import ConsumptionFactory, PlanFactory, ServiceAccountFactory

ISSUE = timezone.localdate()
PERIOD = month_add(ISSUE, -1)  # the month the reading comes back
OPENED = dt.date(2020, 1, 1)


def month(n: int) -> dt.date:
    return month_add(PERIOD, -n)


@pytest.fixture(autouse=True)
def _operator(settings) -> None:
    settings.SELFCARE_VAT_RATE = "0.19"
    settings.SELFCARE_CURRENCY = "TND"


@pytest.fixture
def plan(db) -> Plan:
    # The factory's tranches: 0-50 kWh at 0.062, 50-100 at 0.096, above 100 at 0.176; fee 0.800.
    return PlanFactory(code="E-RES")


def read(account: ServiceAccount, period: dt.date, quantity: str, index: str | None) -> None:
    ConsumptionFactory(
        account=account, period=period, unit=account.unit, quantity=Decimal(quantity),
        meter_index=None if index is None else Decimal(index),
    )  # fmt: skip


def meter(plan: Plan, *, last_index: str = "10410", last_quantity: str = "130") -> ServiceAccount:
    """Read in month(4) and month(3) (billed on that reading), not read in month(2)
    and month(1) (billed on an estimate), read again in PERIOD."""
    account = ServiceAccountFactory(plan=plan, opened_on=OPENED)
    read(account, month(4), "100", "9900")
    read(account, month(3), "110", "10010")
    return account


def read_again(account: ServiceAccount, *, index: str | None, quantity: str = "130") -> None:
    read(account, PERIOD, quantity, index)


def run_month(period: dt.date) -> None:
    run = bill_run_start(period=period, issue_date=ISSUE)
    for chunk_id in runs.bill_run_pending_chunks(run=run):
        bill_run_chunk_process(chunk_id=chunk_id)


def issue_month(account: ServiceAccount, period: dt.date) -> Bill:
    """The single-account path, as the portable run calls it."""
    usage, estimated = usage_for_billing(account=account, period=period)
    return bill_issue(account=account, period=period, issue_date=ISSUE, usage=usage, estimated=estimated)


def line_rows(bill: Bill) -> list[tuple]:
    return list(
        bill.lines.order_by("position").values_list("position", "kind", "quantity", "unit", "unit_price", "amount")
    )


def bill_of(account: ServiceAccount, period: dt.date = PERIOD) -> Bill:
    return Bill.objects.get(account=account, period=period)


def twins(plan: Plan, *, index: str | None, quantity: str = "130") -> tuple[ServiceAccount, ServiceAccount]:
    """Two identical meters through the four months: one billed by the runs, one
    by bill_issue month by month."""
    by_run, by_issue = meter(plan), meter(plan)
    for period in (month(3), month(2), month(1)):
        issue_month(by_issue, period)
        run_month(period)
    for account in (by_run, by_issue):
        read_again(account, index=index, quantity=quantity)
    issue_month(by_issue, PERIOD)
    run_month(PERIOD)
    return by_run, by_issue


def assert_same_bill(a: Bill, b: Bill) -> None:
    assert line_rows(a) == line_rows(b)
    assert (a.amount_lines, a.amount_tax, a.amount_total, a.amount_due, a.status) == (
        b.amount_lines, b.amount_tax, b.amount_total, b.amount_due, b.status,
    )  # fmt: skip


# --- The estimates fell short: a debit -------------------------------------------


def test_a_reading_after_two_estimated_months_adds_what_they_used_beyond_the_estimates(plan) -> None:
    # given: the two unread months billed on an estimate, the average of the readings
    # before them: (100 + 110) / 2 = 105 kWh each, 50 x 0.062 + 50 x 0.096 + 5 x 0.176
    # = 3.100 + 4.800 + 0.880 = 8.780 of consumption each, 210 kWh and 17.560 in all
    # when: the meter is read again at 10 410 with 130 kWh for the month itself
    by_run, by_issue = twins(plan, index="10410")

    for period in (month(2), month(1)):
        estimated = bill_of(by_run, period)
        assert estimated.is_estimated
        assert sum(line.amount for line in estimated.lines.filter(kind="consumption")) == Decimal("8.780")
    # then: 10 410 - 10 010 - 130 = 270 kWh really used in the two months, priced on
    # the tranches of two months (0-100 at 0.062, 100-200 at 0.096, above at 0.176):
    # 6.200 + 9.600 + 70 x 0.176 = 12.320 -> 28.120; less the 17.560 billed = 10.560,
    # for 270 - 210 = 60 kWh more than estimated
    bill = bill_of(by_run)
    assert not bill.is_estimated
    fix = bill.lines.get(kind=BillLine.Kind.ESTIMATE_CORRECTION)
    assert (fix.quantity, fix.unit, fix.amount) == (Decimal("60.000"), "kWh", Decimal("10.560"))
    # the month's own lines are its own reading's: 0.800 + 3.100 + 4.800 + 30 x 0.176 = 13.980
    assert [line.kind for line in bill.lines.order_by("position")] == [
        "fixed_fee", "consumption", "consumption", "consumption", "estimate_fix",
    ]  # fmt: skip
    # 13.980 + 10.560 = 24.540, VAT 19 % = 4.6626 -> 4.663, total 29.203
    assert (bill.amount_lines, bill.amount_tax, bill.amount_total) == (
        Decimal("24.540"), Decimal("4.663"), Decimal("29.203"),
    )  # fmt: skip
    # and the single-account path bills the very same
    assert_same_bill(bill, bill_of(by_issue))


def test_the_estimates_are_corrected_once(plan) -> None:
    by_run, _by_issue = twins(plan, index="10410")
    # a reading the month after: the last bill is on a real reading, nothing to correct
    read(by_run, month_add(PERIOD, 1), "95", "10505")
    assert estimate_correction_find(account=by_run, period=month_add(PERIOD, 1)) is None
    assert BillLine.objects.filter(bill__account=by_run, kind=BillLine.Kind.ESTIMATE_CORRECTION).count() == 1


# --- The estimates overshot: a credit -------------------------------------------


def test_a_reading_below_the_estimates_credits_the_difference(plan) -> None:
    # 10 290 - 10 010 - 130 = 150 kWh in the two months: 100 x 0.062 + 50 x 0.096
    # = 6.200 + 4.800 = 11.000; less the 17.560 billed = -6.560, for 60 kWh less
    by_run, by_issue = twins(plan, index="10290")

    bill = bill_of(by_run)
    fix = bill.lines.get(kind=BillLine.Kind.ESTIMATE_CORRECTION)
    assert (fix.quantity, fix.amount) == (Decimal("-60.000"), Decimal("-6.560"))
    # 13.980 - 6.560 = 7.420, VAT 1.4098 -> 1.410, total 8.830
    assert (bill.amount_lines, bill.amount_tax, bill.amount_total) == (
        Decimal("7.420"), Decimal("1.410"), Decimal("8.830"),
    )  # fmt: skip
    assert_same_bill(bill, bill_of(by_issue))


def test_a_credit_beyond_the_bill_comes_to_zero_and_the_rest_goes_to_the_accounts_credit(plan) -> None:
    # the house stood empty: 10 020 - 10 010 - 10 = nothing used in the two months,
    # so the 17.560 estimated come back, on a month of 10 kWh (0.800 + 0.620 = 1.420)
    by_run, by_issue = twins(plan, index="10020", quantity="10")

    bill = bill_of(by_run)
    fix = bill.lines.get(kind=BillLine.Kind.ESTIMATE_CORRECTION)
    assert (fix.quantity, fix.amount) == (Decimal("-210.000"), Decimal("-17.560"))
    # 1.420 - 17.560 = -16.140, VAT -3.0666 -> -3.067: -19.207 in the subscriber's favour,
    # carried; the bill asks for nothing
    carried = bill.lines.get(kind=BillLine.Kind.CREDIT_CARRIED)
    assert carried.amount == Decimal("19.207")
    assert carried.position == bill.lines.count()  # the last line
    assert (bill.amount_lines, bill.amount_tax, bill.amount_total, bill.amount_due) == (
        Decimal("3.067"), Decimal("-3.067"), Decimal("0.000"), Decimal("0.000"),
    )  # fmt: skip
    # the 19.207 pay the earlier open bills, oldest first, as a payment would: month(3)
    # on its reading (0.800 + 3.100 + 4.800 + 10 x 0.176 = 10.460, VAT 1.987, 12.447) in
    # full, then 6.760 of month(2)'s estimate (9.580, VAT 1.820, 11.400): 4.640 left due,
    # nothing left for the account's credit
    for account in (by_run, by_issue):
        account.refresh_from_db()
        assert account.credit == Decimal("0.000")
        assert [
            (b.amount_total, b.amount_paid, b.amount_due, b.status)
            for b in (bill_of(account, month(3)), bill_of(account, month(2)))
        ] == [
            (Decimal("12.447"), Decimal("12.447"), Decimal("0.000"), "paid"),
            (Decimal("11.400"), Decimal("6.760"), Decimal("4.640"), "partially_paid"),
        ]
    assert_same_bill(bill, bill_of(by_issue))


def test_the_carried_credit_pays_the_next_bill(plan) -> None:
    account = ServiceAccountFactory(plan=plan, opened_on=OPENED, credit=Decimal("19.207"))
    read(account, PERIOD, "60", "10080")

    run_month(PERIOD)

    account.refresh_from_db()
    bill = bill_of(account)
    # 0.800 + 3.100 + 10 x 0.096 = 4.860, VAT 0.923, total 5.783: paid from the credit
    assert (bill.amount_total, bill.amount_paid, bill.status) == (Decimal("5.783"), Decimal("5.783"), "paid")
    assert account.credit == Decimal("19.207") - Decimal("5.783")


# --- Nothing to go on: the estimates stand ----------------------------------------


@pytest.mark.parametrize(
    ("index", "why"),
    [(None, "a reading without its index"), ("10100", "indexes running backwards: 10 100 - 10 010 < 130")],
)
def test_without_a_usable_index_the_estimates_stand(plan, index, why) -> None:
    by_run, by_issue = twins(plan, index=index)

    for account in (by_run, by_issue):
        bill = bill_of(account)
        assert not bill.lines.filter(kind=BillLine.Kind.ESTIMATE_CORRECTION).exists(), why
        # the month is billed on its own reading, as ever: 0.800 + 13.180
        assert bill.amount_lines == Decimal("13.980")


def test_an_estimate_that_was_right_adds_no_line(plan) -> None:
    # 10 350 - 10 010 - 130 = 210 kWh: 105 a month, as estimated
    by_run, by_issue = twins(plan, index="10350")
    assert not BillLine.objects.filter(kind=BillLine.Kind.ESTIMATE_CORRECTION).exists()
    assert_same_bill(bill_of(by_run), bill_of(by_issue))


def test_a_meter_read_every_month_has_nothing_to_correct(plan) -> None:
    account = ServiceAccountFactory(plan=plan, opened_on=OPENED)
    for n, (quantity, index) in enumerate((("100", "9900"), ("110", "10010"), ("120", "10130")), start=0):
        read(account, month(2 - n), quantity, index)
        run_month(month(2 - n))
    assert not BillLine.objects.filter(bill__account=account, kind=BillLine.Kind.ESTIMATE_CORRECTION).exists()
    assert not Bill.objects.filter(account=account, is_estimated=True).exists()


# --- The pure pricing -----------------------------------------------------------------


def test_the_correction_prices_the_real_use_on_tranches_stretched_to_the_months(plan) -> None:
    terms = plan_terms(Plan.objects.prefetch_related("tiers", "levies").get(pk=plan.pk))
    # 3 months, 400 kWh: tranches 0-150, 150-300, above: 150 x 0.062 + 150 x 0.096 + 100 x 0.176
    # = 9.300 + 14.400 + 17.600 = 41.300; billed 3 x 100 kWh for 3 x 7.900 = 23.700
    line = estimate_correction_line(
        plan=terms, real_quantity=Decimal(400), months=3, billed_quantity=Decimal(300),
        billed_amount=Decimal("23.700"), currency="TND",
    )  # fmt: skip
    assert (line.kind, line.quantity, line.unit, line.amount, line.taxable) == (
        "estimate_fix", Decimal(100), "kWh", Decimal("17.600"), True,
    )  # fmt: skip
    exact = estimate_correction_line(
        plan=terms, real_quantity=Decimal(300), months=3, billed_quantity=Decimal(300),
        billed_amount=Decimal("23.700"), currency="TND",
    )  # fmt: skip
    assert exact is None


# --- What the subscriber reads ------------------------------------------------------


def test_the_subscriber_reads_the_correction_on_the_bill_page(subscriber_client, subscriber, plan) -> None:
    from django.urls import reverse
    from django.utils import translation

    account = meter(plan)
    ServiceAccount.objects.filter(pk=account.pk).update(subscriber=subscriber)
    for period in (month(3), month(2), month(1)):
        run_month(period)
    read_again(account, index="10020", quantity="10")  # the credit case: carried to the account
    run_month(PERIOD)

    with translation.override("fr"):
        page = subscriber_client.get(reverse("billing:bill_detail", args=[bill_of(account).number])).content.decode()

    assert "Correction des factures estimées" in page and "Crédit reporté sur votre compte" in page
    assert 'data-testid="estimate-fix"' in page and 'data-testid="credit-carried"' in page
    assert ">-210 kWh<" in page  # the kWh the estimates charged beyond the real use
