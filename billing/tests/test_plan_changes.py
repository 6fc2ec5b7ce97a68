"""Plan changes (billing/plan_changes.py): proration worked out by hand, the rules,
approval, the daily switch, the next bill and the confirmation message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ChannelKind
from billing import tasks
from billing.models import BillLine, Plan, PlanChange, ServiceAccount, ServiceKind, Unit
from billing.plan_changes import (
    PlanChangeRefused,
    plan_change_approve,
    plan_change_cancel,
    plan_change_extra_lines,
    plan_change_preview,
    plan_change_reject,
    plan_change_request,
    plan_changes_apply_due,
    plan_id_for_period,
    proration_compute,
)
from billing.services import bill_issue
from core.dates import month_add
from core.testing import run_at_once
from notifications.models import Message
from notifications.tests.factories import VerifiedChannelFactory

from .factories import BillFactory, ConsumptionFactory, PlanFactory, ServiceAccountFactory

IMMEDIATE, NEXT = PlanChange.Mode.IMMEDIATE, PlanChange.Mode.NEXT_PERIOD


# --- Proration, worked out by hand ---------------------------------------------
#
# From the 45.000 plan to the 25.000 plan (TND, 3 decimals). The month's bill is
# priced on the new plan (25.000); the line adds the days on the old one:
#     (45.000 - 25.000) x days_old / days in the month, quantized once.


@pytest.mark.parametrize(
    ("day", "month_days", "days_old", "days_new", "amount", "month_fee"),
    [
        # 15 Feb 2028, a leap year: 14 days on the old plan of 29.
        # 20 x 14 / 29 = 280 / 29 = 9.65517... -> 9.655; the month costs 25.000 + 9.655
        # = 34.655, which is also 45 x 14/29 + 25 x 15/29 = 1005 / 29 = 34.6551...
        (dt.date(2028, 2, 15), 29, 14, 15, "9.655", "34.655"),
        # 15 Feb 2027: 14 of 28 days, exactly half: 20 x 14 / 28 = 10.000.
        (dt.date(2027, 2, 15), 28, 14, 14, "10.000", "35.000"),
        # 31 Jan 2027, the month's last day: 30 of 31 days: 600 / 31 = 19.35483... -> 19.355.
        (dt.date(2027, 1, 31), 31, 30, 1, "19.355", "44.355"),
        # 1 Mar 2027, the first: no day on the old plan, no line.
        (dt.date(2027, 3, 1), 31, 0, 31, "0.000", "25.000"),
        # 29 Feb 2028, a leap day and the month's last: 20 x 28 / 29 = 19.31034... -> 19.310.
        (dt.date(2028, 2, 29), 29, 28, 1, "19.310", "44.310"),
        # 28 Feb 2027, the last day of a 28-day month: 20 x 27 / 28 = 19.28571... -> 19.286.
        (dt.date(2027, 2, 28), 28, 27, 1, "19.286", "44.286"),
        # 30 Apr 2027, the last day of a 30-day month: 20 x 29 / 30 = 19.3333... -> 19.333.
        (dt.date(2027, 4, 30), 30, 29, 1, "19.333", "44.333"),
    ],
    ids=["leap-feb-15", "feb-15", "jan-31", "first-of-month", "leap-day", "feb-28", "apr-30"],
)
def test_proration_worked_examples(day, month_days, days_old, days_new, amount, month_fee) -> None:
    result = proration_compute(old_fee=Decimal("45.000"), new_fee=Decimal("25.000"), effective_date=day, currency="TND")
    assert (result.month_days, result.days_old, result.days_new) == (month_days, days_old, days_new)
    assert result.amount == Decimal(amount)
    assert result.month_fee == Decimal(month_fee)
    assert result.bill_period == day.replace(day=1)
    assert result.amount.as_tuple().exponent == -3


def test_moving_to_a_dearer_plan_mid_month_is_a_credit_on_the_month_billed_at_the_dearer_fee() -> None:
    # 25.000 -> 45.000 on 15 Feb 2028: the bill charges 45.000, the 14 days at
    # 25.000 come back: (25 - 45) x 14 / 29 = -9.655 (half up, away from zero).
    result = proration_compute(
        old_fee=Decimal("25.000"), new_fee=Decimal("45.000"), effective_date=dt.date(2028, 2, 15), currency="TND"
    )
    assert result.amount == Decimal("-9.655")
    assert result.month_fee == Decimal("35.345")  # 25 x 14/29 + 45 x 15/29 = 1025/29 = 35.3448...


def test_a_month_already_billed_on_the_old_plan_gets_the_new_plans_days_on_the_next_bill() -> None:
    # Feb 2028 was billed at 45.000; from the 15th the plan is 25.000:
    # (25 - 45) x 15 / 29 = -300 / 29 = -10.34482... -> -10.345 on March's bill.
    # The month comes to the same 34.655 as when it is billed afterwards.
    result = proration_compute(
        old_fee=Decimal("45.000"), new_fee=Decimal("25.000"), effective_date=dt.date(2028, 2, 15), currency="TND",
        month_billed=True,
    )  # fmt: skip
    assert result.amount == Decimal("-10.345")
    assert result.bill_period == dt.date(2028, 3, 1)
    assert result.month_fee == Decimal("34.655")


@pytest.mark.parametrize(
    ("currency", "old", "new", "amount"),
    [
        ("MAD", "45.00", "25.00", "9.66"),  # 280 / 29 = 9.655... -> 9.66 (two decimals)
        ("XOF", "45000", "25000", "9655"),  # 20000 x 14 / 29 = 280000 / 29 = 9655.17... -> 9655 (none)
    ],
)
def test_proration_is_quantized_to_the_currency_exponent(currency, old, new, amount) -> None:
    result = proration_compute(
        old_fee=Decimal(old), new_fee=Decimal(new), effective_date=dt.date(2028, 2, 15), currency=currency
    )
    assert result.amount == Decimal(amount)
    assert str(result.amount) == amount


# --- Fixtures -------------------------------------------------------------------


def mobile_plan(code: str, fee: str, **flags) -> Plan:
    return PlanFactory(
        code=code, kind=ServiceKind.MOBILE, monthly_fee=Decimal(fee), included_minutes=300, included_sms=100,
        included_data_gb=Decimal("10"), price_per_minute=Decimal("0.150"), price_per_sms=Decimal("0.050"),
        price_per_gb=Decimal("2.000"), name_fr=f"Forfait {code}", name_en=f"Plan {code}", name_ar=f"باقة {code}",
        **flags,
    )  # fmt: skip


@pytest.fixture
def big(db) -> Plan:
    return mobile_plan("MOB-30", "45.000", allows_immediate_change=True)


@pytest.fixture
def small(db) -> Plan:
    return mobile_plan("MOB-10", "25.000", allows_immediate_change=True)


@pytest.fixture
def account(subscriber, big) -> ServiceAccount:
    return ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)


@pytest.fixture
def channel(subscriber):
    return VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="fr")


class refused:
    """Expect a PlanChangeRefused with this code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        assert isinstance(exc, PlanChangeRefused), f"expected a refusal {self.code}, got {exc!r}"
        assert exc.code == self.code, exc.code
        return True


# --- The rules ------------------------------------------------------------------


def test_a_change_is_scheduled_for_the_first_day_of_the_next_period(account, small, subscriber) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    assert change.status == PlanChange.Status.SCHEDULED
    assert change.effective_date == dt.date(2027, 2, 1)
    assert (change.from_plan, change.to_plan, change.kind) == (account.plan, small, ServiceKind.MOBILE)
    account.refresh_from_db()
    assert account.plan_id != small.pk  # not before its day


def test_another_kind_of_plan_is_refused(account, subscriber) -> None:
    electricity = PlanFactory(kind=ServiceKind.ELECTRICITY)
    with refused("other_kind"):
        plan_change_request(account=account, to_plan=electricity, requested_by=subscriber.user)


def test_a_plan_no_longer_offered_is_refused(account, subscriber) -> None:
    retired = mobile_plan("MOB-OLD", "20.000", is_active=False)
    with refused("plan_retired"):
        plan_change_request(account=account, to_plan=retired, requested_by=subscriber.user)


def test_the_current_plan_is_refused(account, subscriber, big) -> None:
    with refused("same_plan"):
        plan_change_request(account=account, to_plan=big, requested_by=subscriber.user)


def test_a_second_open_change_is_refused(account, subscriber, small) -> None:
    plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)
    third = mobile_plan("MOB-50", "60.000")
    with refused("already_open"):
        plan_change_request(account=account, to_plan=third, requested_by=subscriber.user)
    assert PlanChange.objects.filter(account=account).count() == 1


def test_an_immediate_change_needs_a_plan_that_allows_it(account, subscriber) -> None:
    later_only = mobile_plan("MOB-20", "35.000")
    with refused("immediate_not_allowed"):
        plan_change_request(account=account, to_plan=later_only, requested_by=subscriber.user, mode=IMMEDIATE)


@pytest.mark.parametrize(
    "change",
    [{"status": ServiceAccount.Status.SUSPENDED}, {"billing_mode": ServiceAccount.BillingMode.PREPAID}],
    ids=["suspended", "prepaid"],
)
def test_only_active_postpaid_accounts_change_plan_online(account, subscriber, small, change) -> None:
    ServiceAccount.objects.filter(pk=account.pk).update(**change)
    account.refresh_from_db()
    with refused("account_inactive" if "status" in change else "not_postpaid"):
        plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)


def test_nobody_else_changes_alices_plan(account, small, other_subscriber, other_agency_clerk) -> None:
    for intruder in (other_subscriber.user, other_agency_clerk):
        with refused("not_allowed"):
            plan_change_request(account=account, to_plan=small, requested_by=intruder)
    assert not PlanChange.objects.exists()


def test_an_unknown_mode_is_refused(account, subscriber, small) -> None:
    with refused("bad_mode"):
        plan_change_request(account=account, to_plan=small, requested_by=subscriber.user, mode="yesterday")


# --- The database holds them too ------------------------------------------------


def _row(account: ServiceAccount, to_plan: Plan, **fields) -> PlanChange:
    values = {
        "account": account, "kind": account.kind, "from_plan_id": account.plan_id, "to_plan": to_plan,
        "status": PlanChange.Status.SCHEDULED, "effective_date": dt.date(2027, 2, 1),
        "requested_by": account.subscriber.user, "currency": "TND", **fields,
    }  # fmt: skip
    return PlanChange.objects.create(**values)


def test_the_database_refuses_a_second_open_change(account, small) -> None:
    _row(account, small)
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(account, small, status=PlanChange.Status.PENDING_APPROVAL)
    # A closed one beside an open one is fine.
    _row(account, small, status=PlanChange.Status.CANCELLED, decided_at=timezone.now())


def test_the_database_refuses_a_change_to_the_same_plan(account, big) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(account, big)


def test_the_database_refuses_plans_of_another_kind(account) -> None:
    water = PlanFactory(kind=ServiceKind.WATER)
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(account, water)  # kind mobile, to_plan water: the composite foreign key says no


def test_the_database_refuses_proration_on_a_change_from_the_next_period(account, small) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(account, small, proration_amount=Decimal("1.000"), bill_period=dt.date(2027, 2, 1))


# --- Immediate changes, the next bill --------------------------------------------


def test_an_immediate_change_applies_at_once_and_the_next_bill_adds_the_proration(
    account, subscriber, small, big
) -> None:
    # given: 180 minutes used in February 2028, under every allowance
    ConsumptionFactory(account=account, period=dt.date(2028, 2, 1), unit=Unit.MINUTES, quantity=Decimal("180"))
    # when: the subscriber moves from 45.000 to 25.000 on 15 Feb 2028 (29 days, 14 on the old plan)
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2028, 2, 15)
    )
    # then
    assert change.status == PlanChange.Status.APPLIED
    assert change.effective_date == dt.date(2028, 2, 15)
    assert change.proration_amount == Decimal("9.655")
    assert change.bill_period == dt.date(2028, 2, 1)
    account.refresh_from_db()
    assert account.plan_id == small.pk

    bill = bill_issue(account=account, period=dt.date(2028, 2, 1), issue_date=dt.date(2028, 3, 5))
    lines = {line.kind: line for line in bill.lines.all()}
    assert lines[BillLine.Kind.FIXED_FEE].amount == Decimal("25.000")  # the plan on the month's last day
    assert lines[BillLine.Kind.PRORATION].amount == Decimal("9.655")
    assert lines[BillLine.Kind.PRORATION].quantity == 14  # days on the old plan
    assert bill.amount_lines == Decimal("34.655")
    assert bill.amount_tax == Decimal("6.584")  # 34.655 x 0.19 = 6.58445
    # the month after carries nothing more
    assert plan_change_extra_lines(account=account, period=dt.date(2028, 3, 1)) == []


def test_an_immediate_change_on_the_first_of_the_month_adds_no_line(account, subscriber, small) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2027, 3, 1)
    )
    assert change.proration_amount == 0 and change.bill_period is None
    assert plan_change_extra_lines(account=account, period=dt.date(2027, 3, 1)) == []


def test_an_immediate_change_in_a_month_already_billed_goes_on_the_next_bill(account, subscriber, small) -> None:
    BillFactory(account=account, period=dt.date(2028, 2, 1))
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2028, 2, 15)
    )
    assert change.proration_amount == Decimal("-10.345")  # (25 - 45) x 15 / 29
    assert change.bill_period == dt.date(2028, 3, 1)
    (line,) = plan_change_extra_lines(account=account, period=dt.date(2028, 3, 1))
    assert (line.kind, line.amount, line.quantity) == (BillLine.Kind.PRORATION, Decimal("-10.345"), 15)


def test_the_month_before_a_scheduled_change_is_billed_on_the_old_plan_even_after_the_switch(
    account, subscriber, small, big
) -> None:
    plan_change_request(account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20))
    assert plan_changes_apply_due(today=dt.date(2027, 2, 1)) == 1
    account.refresh_from_db()
    assert account.plan_id == small.pk
    # January's bill, issued on 5 February, after the switch: January was on the old plan.
    assert plan_id_for_period(account=account, period=dt.date(2027, 1, 1)) == big.pk
    assert plan_id_for_period(account=account, period=dt.date(2027, 2, 1)) == small.pk
    january = bill_issue(account=account, period=dt.date(2027, 1, 1), issue_date=dt.date(2027, 2, 5))
    assert january.lines.get(kind=BillLine.Kind.FIXED_FEE).amount == Decimal("45.000")
    february = bill_issue(account=account, period=dt.date(2027, 2, 1), issue_date=dt.date(2027, 3, 5))
    assert february.lines.get(kind=BillLine.Kind.FIXED_FEE).amount == Decimal("25.000")
    assert not february.lines.filter(kind=BillLine.Kind.PRORATION).exists()


def test_the_plans_of_a_period_for_many_accounts_match_one_by_one(account, subscriber, small, big) -> None:
    from billing.plan_changes import plan_ids_for_period

    untouched = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    dear = mobile_plan("MOB-50", "60.000", allows_immediate_change=True)
    plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2027, 3, 10)
    )
    plan_change_request(
        account=account, to_plan=dear, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2027, 5, 10)
    )
    account.refresh_from_db()
    for period, expected in (
        (dt.date(2027, 2, 1), big),
        (dt.date(2027, 3, 1), small),
        (dt.date(2027, 4, 1), small),
        (dt.date(2027, 5, 1), dear),
    ):
        bulk = plan_ids_for_period(period=period, account_ids=[account.pk, untouched.pk])
        assert (
            bulk.get(account.pk, account.plan_id) == plan_id_for_period(account=account, period=period) == expected.pk
        )
        assert untouched.pk not in bulk


def test_two_immediate_changes_in_one_month_add_up_to_the_days_on_each_plan(account, subscriber, small, big) -> None:
    # 45 until the 10th, 25 from the 10th to the 19th, 60 from the 20th, of 31 days (Jan 2027):
    # owed 45 x 9/31 + 25 x 10/31 + 60 x 12/31 = (405 + 250 + 720) / 31 = 1375/31 = 44.3548...,
    # here as two lines each quantized once: 60.000 + 5.806 - 21.452 = 44.354.
    dear = mobile_plan("MOB-50", "60.000", allows_immediate_change=True)
    plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2027, 1, 10)
    )
    account.refresh_from_db()
    plan_change_request(
        account=account, to_plan=dear, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2027, 1, 20)
    )
    lines = plan_change_extra_lines(account=account, period=dt.date(2027, 1, 1))
    # (45 - 25) x 9 / 31 = 5.806; (25 - 60) x 19 / 31 = -21.452; the bill's fee line is 60.000
    assert [line.amount for line in lines] == [Decimal("5.806"), Decimal("-21.452")]
    assert Decimal("60.000") + sum(line.amount for line in lines) == Decimal("44.354")


# --- Cancelling -------------------------------------------------------------------


def test_a_subscriber_cancels_a_change_before_it_takes_effect(account, subscriber, small) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    plan_change_cancel(change=change, cancelled_by=subscriber.user, today=dt.date(2027, 1, 31))
    change.refresh_from_db()
    assert change.status == PlanChange.Status.CANCELLED and change.decided_by == subscriber.user
    assert plan_changes_apply_due(today=dt.date(2027, 2, 1)) == 0
    account.refresh_from_db()
    assert account.plan_id != small.pk
    # ...and may ask for another one now
    plan_change_request(account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 31))


def test_cancelling_after_the_change_took_effect_is_refused(account, subscriber, small) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    # Its day has come, the switch has not run yet: it has taken effect all the same.
    with refused("not_open"):
        plan_change_cancel(change=change, cancelled_by=subscriber.user, today=dt.date(2027, 2, 1))
    plan_changes_apply_due(today=dt.date(2027, 2, 1))
    with refused("not_open"):
        plan_change_cancel(change=change, cancelled_by=subscriber.user, today=dt.date(2027, 2, 2))
    change.refresh_from_db()
    assert change.status == PlanChange.Status.APPLIED


def test_an_immediate_change_cannot_be_cancelled(account, subscriber, small) -> None:
    change = plan_change_request(account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE)
    with refused("not_open"):
        plan_change_cancel(change=change, cancelled_by=subscriber.user)


def test_another_subscriber_cannot_cancel_alices_change(account, subscriber, small, other_subscriber) -> None:
    change = plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)
    with refused("not_allowed"):
        plan_change_cancel(change=change, cancelled_by=other_subscriber.user)


# --- The daily switch -------------------------------------------------------------


def test_the_switch_applies_a_scheduled_change_once_on_its_day(account, subscriber, small) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    assert plan_changes_apply_due(today=dt.date(2027, 1, 31)) == 0  # not yet
    assert plan_changes_apply_due(today=dt.date(2027, 2, 1)) == 1
    assert plan_changes_apply_due(today=dt.date(2027, 2, 1)) == 0  # run again: nothing twice
    assert plan_changes_apply_due(today=dt.date(2027, 2, 2)) == 0
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.status == PlanChange.Status.APPLIED and change.applied_at is not None
    assert account.plan_id == small.pk


def test_the_beat_task_applies_what_is_due_today(account, subscriber, small) -> None:
    today = timezone.localdate()
    change = _row(account, small, effective_date=today.replace(day=1))
    assert tasks.plan_changes_apply_due.apply().get() == 1
    assert tasks.plan_changes_apply_due.apply().get() == 0
    change.refresh_from_db()
    assert change.status == PlanChange.Status.APPLIED


def test_a_scheduled_change_on_an_account_whose_plan_moved_meanwhile_is_not_applied(account, subscriber, small) -> None:
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    other = mobile_plan("MOB-20", "35.000")
    ServiceAccount.objects.filter(pk=account.pk).update(plan=other)  # a clerk changed it in the back office
    assert plan_changes_apply_due(today=dt.date(2027, 2, 1)) == 0
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.status == PlanChange.Status.CANCELLED and change.reason
    assert account.plan_id == other.pk


# --- Approval ---------------------------------------------------------------------


@pytest.fixture
def approval_plan(db) -> Plan:
    return mobile_plan("MOB-PRO", "80.000", change_needs_approval=True, allows_immediate_change=True)


def test_a_plan_needing_approval_waits_then_a_supervisor_approves_it(
    account, subscriber, approval_plan, supervisor, channel
) -> None:
    change = plan_change_request(
        account=account, to_plan=approval_plan, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    assert change.status == PlanChange.Status.PENDING_APPROVAL
    assert Message.objects.filter(event="plan_change_pending", reference=account.number).count() == 1
    plan_change_approve(change=change, decided_by=supervisor, today=dt.date(2027, 1, 25))
    change.refresh_from_db()
    assert change.status == PlanChange.Status.SCHEDULED
    assert change.effective_date == dt.date(2027, 2, 1)
    assert change.decided_by == supervisor and change.decided_at is not None
    assert Message.objects.filter(event="plan_change_confirmed", reference=account.number).count() == 1
    with refused("already_decided"):
        plan_change_approve(change=change, decided_by=supervisor, today=dt.date(2027, 1, 25))


def test_a_change_approved_after_its_date_starts_a_period_later_never_backdated(
    account, subscriber, approval_plan, supervisor
) -> None:
    change = plan_change_request(
        account=account, to_plan=approval_plan, requested_by=subscriber.user, today=dt.date(2027, 1, 20)
    )
    plan_change_approve(change=change, decided_by=supervisor, today=dt.date(2027, 2, 3))
    change.refresh_from_db()
    assert change.effective_date == dt.date(2027, 3, 1)


def test_an_immediate_change_needing_approval_applies_on_the_day_it_is_approved(
    account, subscriber, approval_plan, supervisor
) -> None:
    change = plan_change_request(
        account=account, to_plan=approval_plan, requested_by=subscriber.user, mode=IMMEDIATE,
        today=dt.date(2028, 2, 10),
    )  # fmt: skip
    account.refresh_from_db()
    assert change.status == PlanChange.Status.PENDING_APPROVAL and account.plan_id != approval_plan.pk
    plan_change_approve(change=change, decided_by=supervisor, today=dt.date(2028, 2, 15))
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.status == PlanChange.Status.APPLIED and account.plan_id == approval_plan.pk
    assert change.effective_date == dt.date(2028, 2, 15)
    assert change.proration_amount == Decimal("-16.897")  # (45 - 80) x 14 / 29 = -490/29 = -16.8965...


def test_a_supervisor_rejects_a_change_and_the_subscriber_is_told(
    account, subscriber, approval_plan, supervisor, channel
) -> None:
    change = plan_change_request(account=account, to_plan=approval_plan, requested_by=subscriber.user)
    plan_change_reject(change=change, decided_by=supervisor, reason="Business plans need a trade register")
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.status == PlanChange.Status.REJECTED and change.reason.startswith("Business")
    assert account.plan_id != approval_plan.pk
    message = Message.objects.get(event="plan_change_rejected")
    assert account.number in message.body and "MOB-PRO" in message.body


def test_only_supervisors_of_the_agency_decide(
    account, subscriber, approval_plan, clerk, other_agency_clerk, auditor
) -> None:
    from django.contrib.auth.models import Group

    from accounts import roles
    from accounts.tests.factories import AgencyFactory, UserFactory

    change = plan_change_request(account=account, to_plan=approval_plan, requested_by=subscriber.user)
    elsewhere = AgencyFactory()
    other_supervisor = UserFactory(email="sup@elsewhere.example", is_staff=True)
    other_supervisor.groups.add(Group.objects.get(name=roles.SUPERVISOR))
    other_supervisor.agencies.add(elsewhere)
    for user in (clerk, other_agency_clerk, other_supervisor, auditor, subscriber.user):
        with refused("not_allowed"):
            plan_change_approve(change=change, decided_by=user)
    change.refresh_from_db()
    assert change.status == PlanChange.Status.PENDING_APPROVAL


def test_approving_leaves_an_audit_entry_naming_the_change(account, subscriber, approval_plan, supervisor) -> None:
    from auditlog.models import LogEntry

    change = plan_change_request(account=account, to_plan=approval_plan, requested_by=subscriber.user)
    plan_change_approve(change=change, decided_by=supervisor)
    entries = LogEntry.objects.get_for_object(change)
    assert entries.filter(action=LogEntry.Action.UPDATE).exists()
    assert entries.first().additional_data["agency_id"] == subscriber.agency_id


# --- The confirmation -------------------------------------------------------------


def test_the_confirmation_goes_to_the_outbox_once_in_the_channels_language(account, subscriber, small) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="ar", address="+21620111222")
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.EMAIL, language="en", address="alice@example.com")
    change = plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode=IMMEDIATE, today=dt.date(2028, 2, 15)
    )
    messages = {m.channel_kind: m for m in Message.objects.filter(event="plan_change_confirmed")}
    assert set(messages) == {ChannelKind.SMS, ChannelKind.EMAIL}
    sms, email = messages[ChannelKind.SMS], messages[ChannelKind.EMAIL]
    assert sms.reference == account.number
    assert "باقة MOB-10" in sms.body and "15/02/2028" in sms.body and sms.segments <= 2
    assert "Plan MOB-30" in email.body and "Plan MOB-10" in email.body and "9.655" in email.body
    assert email.subject == "Plan change confirmed"
    assert str(change.pk) in sms.dedupe_key


# --- The preview ------------------------------------------------------------------


def test_the_preview_shows_fees_allowances_estimates_and_proration(account, small) -> None:
    ConsumptionFactory(account=account, period=dt.date(2028, 1, 1), unit=Unit.GB, quantity=Decimal("12"))
    preview = plan_change_preview(account=account, to_plan=small, mode=IMMEDIATE, today=dt.date(2028, 2, 15))
    assert preview.monthly_fee_change == Decimal("-20.000")
    fee = preview.differences[0]
    assert (fee.old, fee.new, fee.changed) == (Decimal("45.000"), Decimal("25.000"), True)
    assert preview.usage_period == dt.date(2028, 1, 1)
    # 12 GB on 10 GB included: 2 x 2.000 beyond; 45.000 + 4.000 = 49.000 + 19% = 58.310
    assert preview.estimate_old.amount_total == Decimal("58.310")
    # new plan: 25.000 + 4.000 + this month's 9.655 = 38.655 + 7.344 = 45.999
    assert preview.estimate_new.amount_lines == Decimal("38.655")
    assert preview.estimate_new.amount_total == Decimal("45.999")
    assert preview.proration.amount == Decimal("9.655") and preview.proration.days_old == 14


def test_the_preview_compares_tranches_of_utility_plans(subscriber) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)  # electricity, 3 tranches
    other = PlanFactory(tiers=[(0, 100, "0.075"), (100, None, "0.190")])
    preview = plan_change_preview(account=account, to_plan=other, mode=NEXT, today=dt.date(2027, 1, 20))
    tranches = [row for row in preview.differences if row.fmt == "tier"]
    assert len(tranches) == 3
    assert tranches[2].new is None and tranches[2].changed
    assert preview.estimate_old is None  # no consumption yet
    assert preview.effective_date == dt.date(2027, 2, 1)


def test_the_preview_refuses_what_the_request_would(account, subscriber, small, big) -> None:
    with refused("same_plan"):
        plan_change_preview(account=account, to_plan=big, mode=NEXT)
    plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)
    with refused("already_open"):
        plan_change_preview(account=account, to_plan=small, mode=NEXT)


# --- Two requests at once ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_make_one_change(subscriber, big, small) -> None:
    account = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    third = mobile_plan("MOB-50", "60.000")
    results = run_at_once(
        [
            lambda: plan_change_request(account=account, to_plan=small, requested_by=subscriber.user),
            lambda: plan_change_request(account=account, to_plan=third, requested_by=subscriber.user),
        ]
    )
    made = [r for r in results if isinstance(r, PlanChange)]
    refusals = [r for r in results if isinstance(r, PlanChangeRefused)]
    assert len(made) == 1 and len(refusals) == 1, results
    assert refusals[0].code == "already_open"
    assert PlanChange.objects.filter(account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_switches_at_once_apply_a_change_once(subscriber, big, small) -> None:
    account = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    plan_change_request(account=account, to_plan=small, requested_by=subscriber.user, today=dt.date(2027, 1, 20))
    results = run_at_once(
        [
            lambda: plan_changes_apply_due(today=dt.date(2027, 2, 1)),
            lambda: plan_changes_apply_due(today=dt.date(2027, 2, 1)),
        ]
    )
    assert sorted(results) == [0, 1], results
    account.refresh_from_db()
    assert account.plan_id == small.pk


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_switch_ends_one_way_only(subscriber, big, small) -> None:
    account = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    today = timezone.localdate()
    change = _row(account, small, effective_date=month_add(today, 1))
    # The switch runs on the change's day; the subscriber's cancel comes the day before.
    results = run_at_once(
        [
            lambda: plan_changes_apply_due(today=change.effective_date),
            lambda: plan_change_cancel(change=change, cancelled_by=subscriber.user, today=today),
        ]
    )
    change.refresh_from_db()
    account.refresh_from_db()
    if change.status == PlanChange.Status.APPLIED:
        assert results[0] == 1 and isinstance(results[1], PlanChangeRefused)
        assert account.plan_id == small.pk
    else:
        assert change.status == PlanChange.Status.CANCELLED
        assert results[0] == 0 and isinstance(results[1], PlanChange)
        assert account.plan_id == big.pk


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_plan_change_sms_fit_two_segments_with_the_demos_longest_plan_names(language) -> None:
    from billing.demo import PLANS
    from billing.messages import PLAN_CHANGE_CONFIRMED, PLAN_CHANGE_PENDING, PLAN_CHANGE_REJECTED
    from core.money import Money
    from notifications.services import _localise, message_render

    longest = sorted((spec[language] for spec in PLANS), key=len)[-2:]
    context = {
        "account": "1000000016", "from_plan": longest[0], "to_plan": longest[1], "immediate": True,
        "effective_date": dt.date(2027, 12, 31), "proration": Money(Decimal("-123.456"), "TND"),
    }  # fmt: skip
    for event in (PLAN_CHANGE_CONFIRMED, PLAN_CHANGE_PENDING, PLAN_CHANGE_REJECTED):
        rendered = message_render(
            event=event, language=language, channel_kind=ChannelKind.SMS, context=_localise(context, language)
        )
        assert rendered.segments <= 2, rendered.body
        assert "1000000016" in rendered.body and longest[1] in rendered.body
