"""The overdue ladder with a frozen clock: every service takes `today`, so
each test says which day it is (no test depends on the machine's date)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import ChannelKind
from billing.dunning import (
    dunning_account_advance,
    dunning_account_settle,
    dunning_exemption_grant,
    dunning_run,
    field_order_execute,
    field_orders_mark_printed,
    ladder_get,
)
from billing.messages import DISCONNECTION_WARNING, DUE_REMINDER, OVERDUE_NOTICE
from billing.models import (
    Bill,
    DunningExemption,
    DunningLadderStep,
    DunningStep,
    DunningStepKind,
    FieldOrder,
    ServiceAccount,
)
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.exceptions import ApplicationError
from core.testing import run_at_once
from notifications.models import Message
from notifications.tests.factories import VerifiedChannelFactory

DUE = dt.date(2026, 11, 20)
Kind = DunningStepKind


def day(offset: int) -> dt.date:
    return DUE + dt.timedelta(days=offset)


@pytest.fixture
def account(subscriber):
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="fr")
    return ServiceAccountFactory(subscriber=subscriber)


@pytest.fixture
def bill(account):
    return BillFactory(account=account, period=dt.date(2026, 10, 1), issue_date=dt.date(2026, 10, 31), due_date=DUE)


def kinds(account) -> list[str]:
    return sorted(DunningStep.objects.filter(account=account).values_list("kind", flat=True))


def pay(bill: Bill, amount: Decimal | None = None) -> None:
    bill.set_amount_paid(bill.amount_paid + (bill.amount_due if amount is None else amount))
    bill.save()


@pytest.mark.django_db
def test_the_default_ladder_is_minus_3_plus_1_plus_15_plus_30() -> None:
    ladder = ladder_get()
    assert (ladder.reminder, ladder.overdue_notice, ladder.warning, ladder.order) == (-3, 1, 15, 30)


@pytest.mark.django_db
def test_the_reminder_goes_three_days_before_the_due_date_and_not_before(account, bill) -> None:
    dunning_run(today=day(-4))
    assert kinds(account) == []
    dunning_run(today=day(-3))
    assert kinds(account) == [Kind.REMINDER]
    message = Message.objects.get(event=DUE_REMINDER.name)
    assert account.number in message.body and "20/11/2026" in message.body
    assert message.dedupe_key == f"due_reminder:{bill.number}:{message.channel_id}"


@pytest.mark.django_db
def test_the_overdue_notice_goes_the_day_after_the_due_date_with_the_disconnection_date(account, bill) -> None:
    dunning_run(today=day(0))  # due today: not overdue yet (and the reminder catches up)
    assert kinds(account) == [Kind.REMINDER]
    dunning_run(today=day(1))
    assert kinds(account) == [Kind.OVERDUE_NOTICE, Kind.REMINDER]
    notice = Message.objects.get(event=OVERDUE_NOTICE.name)
    assert "20/12/2026" in notice.body  # due + 30
    assert notice.urgent


@pytest.mark.django_db
def test_the_warning_goes_at_15_days_with_due_plus_30_and_the_order_at_30(account, bill) -> None:
    dunning_run(today=day(1))
    dunning_run(today=day(14))
    assert Kind.DISCONNECTION_WARNING not in kinds(account)
    dunning_run(today=day(15))
    warning = DunningStep.objects.get(account=account, kind=Kind.DISCONNECTION_WARNING)
    assert warning.disconnection_date == day(30) and warning.messages == 1
    text = Message.objects.get(event=DISCONNECTION_WARNING.name).body
    assert "20/12/2026" in text and "59,500" in text
    dunning_run(today=day(29))
    assert not FieldOrder.objects.exists()
    dunning_run(today=day(30))
    order = FieldOrder.objects.get()
    assert (order.kind, order.status, order.ordered_on) == (FieldOrder.Kind.DISCONNECTION, "to_print", day(30))
    assert order.agency_id == account.subscriber.agency_id
    # No message for the order itself: the warning was the message.
    assert Message.objects.filter(reference=account.number).count() == 2


@pytest.mark.django_db
def test_running_again_takes_no_step_twice(account, bill) -> None:
    for offset in (-3, -3, 1, 1, 15, 15, 30, 30, 31):
        dunning_run(today=day(offset))
    assert kinds(account) == sorted(
        [Kind.REMINDER, Kind.OVERDUE_NOTICE, Kind.DISCONNECTION_WARNING, Kind.DISCONNECTION_ORDER]
    )
    assert FieldOrder.objects.count() == 1
    assert Message.objects.filter(reference=account.number).count() == 3


@pytest.mark.django_db
def test_a_late_run_catches_up_without_reminding_an_overdue_bill(account, bill) -> None:
    # The task did not run for twenty days: no late reminder, no stale notice, a warning
    # that still gives the full 30-day date.
    dunning_run(today=day(20))
    assert kinds(account) == [Kind.DISCONNECTION_WARNING]
    assert DunningStep.objects.get(kind=Kind.DISCONNECTION_WARNING).disconnection_date == day(30)


@pytest.mark.django_db
def test_a_very_late_warning_still_gives_the_minimum_notice(settings, account, bill) -> None:
    settings.SELFCARE_DUNNING_MIN_NOTICE_DAYS = 7
    dunning_run(today=day(40))
    warning = DunningStep.objects.get(kind=Kind.DISCONNECTION_WARNING)
    assert warning.disconnection_date == day(47)
    assert not FieldOrder.objects.exists()  # never an order without the notice given
    dunning_run(today=day(46))
    assert not FieldOrder.objects.exists()
    dunning_run(today=day(47))
    assert FieldOrder.objects.count() == 1


@pytest.mark.django_db
def test_an_exempt_account_gets_reminders_but_no_warning_or_order(account, bill, supervisor) -> None:
    dunning_exemption_grant(
        account=account, reason=DunningExemption.Reason.MEDICAL, note="", starts_on=day(-10), ends_on=day(60),
        granted_by=supervisor, today=day(-10),
    )  # fmt: skip
    for offset in (-3, 1, 15, 30, 45):
        dunning_run(today=day(offset))
    assert kinds(account) == [Kind.REMINDER]
    assert not FieldOrder.objects.exists()


@pytest.mark.django_db
def test_the_ladder_resumes_when_the_exemption_ends(account, bill, supervisor) -> None:
    dunning_exemption_grant(
        account=account, reason=DunningExemption.Reason.DISPUTE, note="meter", starts_on=day(1), ends_on=day(25),
        granted_by=supervisor, today=day(1),
    )  # fmt: skip
    dunning_run(today=day(25))
    assert Kind.DISCONNECTION_WARNING not in kinds(account)
    dunning_run(today=day(26))
    assert DunningStep.objects.get(kind=Kind.DISCONNECTION_WARNING).disconnection_date == day(33)


@pytest.mark.django_db
def test_an_exemption_cancels_an_order_not_yet_carried_out(account, bill, supervisor) -> None:
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    order = FieldOrder.objects.get()
    dunning_exemption_grant(
        account=account, reason=DunningExemption.Reason.MEDICAL, note="", starts_on=day(31), ends_on=None,
        granted_by=supervisor, today=day(31),
    )  # fmt: skip
    order.refresh_from_db()
    assert order.status == FieldOrder.Status.CANCELLED


@pytest.mark.django_db
def test_an_exemption_for_another_reason_says_why(account, supervisor) -> None:
    with pytest.raises(ApplicationError):
        dunning_exemption_grant(
            account=account, reason="other", note=" ", starts_on=day(0), ends_on=None, granted_by=supervisor
        )
    with pytest.raises(ApplicationError):
        dunning_exemption_grant(
            account=account, reason="medical", note="", starts_on=day(5), ends_on=day(1), granted_by=supervisor
        )


@pytest.mark.django_db
def test_paying_after_disconnection_orders_one_reconnection(account, bill, clerk) -> None:
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    order = FieldOrder.objects.get()
    field_orders_mark_printed(orders=[order], by=clerk)
    field_order_execute(order=order, by=clerk)
    account.refresh_from_db()
    assert account.status == ServiceAccount.Status.DISCONNECTED
    pay(bill)
    dunning_account_settle(account=account, today=day(33))
    dunning_account_settle(account=account, today=day(33))
    dunning_run(today=day(34))
    reconnection = FieldOrder.objects.get(kind=FieldOrder.Kind.RECONNECTION)
    assert reconnection.reconnects == order and reconnection.status == "to_print"
    assert DunningStep.objects.filter(kind=Kind.RECONNECTION_ORDER).count() == 1
    field_order_execute(order=reconnection, by=clerk)
    account.refresh_from_db()
    assert account.status == ServiceAccount.Status.ACTIVE


@pytest.mark.django_db
def test_a_partial_payment_orders_no_reconnection(account, bill, clerk) -> None:
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    field_order_execute(order=FieldOrder.objects.get(), by=clerk)
    pay(bill, Decimal("10.000"))
    dunning_run(today=day(33))
    assert not FieldOrder.objects.filter(kind=FieldOrder.Kind.RECONNECTION).exists()


@pytest.mark.django_db
def test_the_daily_run_finds_a_payment_made_any_other_way(account, bill, clerk) -> None:
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    field_order_execute(order=FieldOrder.objects.get(), by=clerk)
    pay(bill)  # e.g. from credit or a correction: no payment_apply
    dunning_run(today=day(33))
    assert FieldOrder.objects.filter(kind=FieldOrder.Kind.RECONNECTION).count() == 1


@pytest.mark.django_db
def test_paying_before_the_field_team_went_cancels_the_order(account, bill) -> None:
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    pay(bill)
    dunning_run(today=day(31))
    order = FieldOrder.objects.get()
    assert order.status == FieldOrder.Status.CANCELLED
    assert not FieldOrder.objects.filter(kind=FieldOrder.Kind.RECONNECTION).exists()


@pytest.mark.django_db
def test_a_paid_bill_goes_no_further(account, bill) -> None:
    dunning_run(today=day(1))
    pay(bill)
    for offset in (15, 30):
        dunning_run(today=day(offset))
    assert kinds(account) == [Kind.OVERDUE_NOTICE]


@pytest.mark.django_db
def test_a_switched_off_step_is_not_taken(account, bill) -> None:
    # update_or_create: the seeded rows (billing 0011) are gone after a
    # transactional test's flush when the test database is reused.
    DunningLadderStep.objects.update_or_create(kind=Kind.REMINDER, defaults={"days_after_due": -3, "is_active": False})
    DunningLadderStep.objects.update_or_create(
        kind=Kind.DISCONNECTION_WARNING, defaults={"days_after_due": 10, "is_active": True}
    )
    dunning_run(today=day(-3))
    dunning_run(today=day(10))
    assert kinds(account) == [Kind.DISCONNECTION_WARNING]


@pytest.mark.django_db
def test_the_hourly_sweep_flags_but_sends_nothing(account, bill) -> None:
    from billing.services import bills_flag_overdue

    assert bills_flag_overdue(today=day(1)) == 1
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_take_each_step_once(subscriber) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    accounts = [ServiceAccountFactory(subscriber=subscriber) for _ in range(4)]
    for account in accounts:
        BillFactory(account=account, period=dt.date(2026, 10, 1), issue_date=dt.date(2026, 10, 31), due_date=DUE)

    def run() -> None:
        dunning_run(today=day(15))
        dunning_run(today=day(30))

    assert run_at_once([run, run]) == [None, None]
    assert DunningStep.objects.filter(kind=Kind.DISCONNECTION_WARNING).count() == 4
    assert FieldOrder.objects.count() == 4
    assert Message.objects.filter(event=DISCONNECTION_WARNING.name).count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_threads_on_one_account_take_the_step_once(subscriber) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    account = ServiceAccountFactory(subscriber=subscriber)
    BillFactory(account=account, period=dt.date(2026, 10, 1), issue_date=dt.date(2026, 10, 31), due_date=DUE)

    def run() -> int:
        return len(dunning_account_advance(account_id=account.pk, today=day(15)))

    taken = run_at_once([run, run])
    assert sorted(taken) == [0, 1], taken  # type: ignore[type-var]
    assert Message.objects.filter(event=DISCONNECTION_WARNING.name).count() == 1


@pytest.mark.django_db
def test_a_payment_of_the_overdue_amount_orders_one_reconnection_at_once(account, bill, clerk) -> None:
    from payments.services import payment_apply
    from payments.tests.factories import ProviderFactory

    # given: disconnected on day 30 (the days are the past, the payment is today)
    dunning_run(today=day(15))
    dunning_run(today=day(30))
    field_order_execute(order=FieldOrder.objects.get(), by=clerk)
    provider = ProviderFactory()
    # when: the bank pays what is overdue, and replays the callback
    for _ in range(2):
        payment_apply(
            provider=provider, reference="RECON-1", account_number=account.number, amount=bill.amount_due,
            currency="TND", paid_at=dt.datetime(2026, 12, 21, 9, tzinfo=dt.UTC),
        )  # fmt: skip
    # then: one reconnection order, written with the payment
    reconnection = FieldOrder.objects.get(kind=FieldOrder.Kind.RECONNECTION)
    assert reconnection.agency_id == account.subscriber.agency_id
    dunning_run(today=day(40))
    assert FieldOrder.objects.filter(kind=FieldOrder.Kind.RECONNECTION).count() == 1
