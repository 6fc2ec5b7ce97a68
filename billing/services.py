"""Writes for billing: opening accounts, issuing bills, the overdue sweep."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Subscriber, User
from core.audit import audit_bulk, audit_saves
from core.exceptions import ApplicationError
from core.models import sequence_next
from core.money import quantize

from .dunning import dunning_account_settle
from .estimates import estimate_correction_lines
from .messages import bill_announce
from .models import Bill, BillLine, Consumption, Plan, PrintRequest, ServiceAccount, SmsAlertSubscription
from .numbers import account_number_from_serial
from .plan_changes import plan_change_extra_lines, plan_id_for_period
from .sms_alerts import sms_alert_fee_lines
from .tariffs import LineDraft, PlanTerms, bill_compute, credit_to_use, plan_terms

ACCOUNT_SEQUENCE = "account_number"
# What moving a bill's paid amount writes (Bill.set_amount_paid, bills_paid_write).
BILL_PAID_FIELDS = ["amount_paid", "amount_due", "status"]


def account_numbers_reserve(*, count: int) -> list[str]:
    return [account_number_from_serial(n) for n in sequence_next(ACCOUNT_SEQUENCE, count=count)]


def account_open(
    *,
    subscriber: Subscriber,
    plan: Plan,
    meter_number: str,
    service_address: str,
    billing_mode: str = ServiceAccount.BillingMode.POSTPAID,
    opened_on: dt.date | None = None,
) -> ServiceAccount:
    if not plan.is_active:
        raise ApplicationError("This plan is no longer offered.", code="plan_retired")
    (number,) = account_numbers_reserve(count=1)
    return ServiceAccount.objects.create(
        number=number,
        subscriber=subscriber,
        kind=plan.kind,
        plan=plan,
        billing_mode=billing_mode,
        meter_number=meter_number,
        service_address=service_address,
        opened_on=opened_on or timezone.localdate(),
    )


def bill_build(
    *,
    account: ServiceAccount,
    plan: Plan | PlanTerms,
    period: dt.date,
    usage: Mapping[str, Decimal],
    issue_date: dt.date,
    currency: str | None = None,
    extra: Iterable[LineDraft] = (),
    estimated: bool = False,
) -> tuple[Bill, list[BillLine]]:
    """Price one month with `bill_compute` and return the unsaved bill with its lines.

    Split from `bill_issue` so bulk writers (the demo seed) share the exact
    pricing of a single issue. The account's credit is applied afterwards, under
    its row lock (`bill_pay_from_credit`). A `Plan` should come with its tiers
    and levies prefetched.
    """
    currency = currency or settings.SELFCARE_CURRENCY
    terms = plan if isinstance(plan, PlanTerms) else plan_terms(plan)
    draft = bill_compute(plan=terms, usage=usage, period=period, extra_lines=tuple(extra), currency=currency)
    bill = Bill(
        number=bill_number(account_number=account.number, period=period),
        account=account,
        period=period,
        issue_date=issue_date,
        due_date=bill_due_date(issue_date=issue_date),
        currency=currency,
        amount_lines=draft.amount_lines,
        amount_tax=draft.amount_tax,
        amount_total=draft.amount_total,
        amount_paid=Decimal(0),
        amount_due=draft.amount_total,
        status=Bill.Status.ISSUED,
        is_estimated=estimated,
    )
    lines = [
        BillLine(
            bill=bill,
            position=position,
            kind=d.kind,
            tier=d.tier,
            quantity=d.quantity,
            unit=d.unit,
            unit_price=d.unit_price,
            amount=d.amount,
            levy_id=d.levy_id,
        )
        for position, d in enumerate(draft.lines, start=1)
    ]
    return bill, lines


def bill_number(*, account_number: str, period: dt.date) -> str:
    return f"{account_number}-{period:%Y%m}"


def bill_due_date(*, issue_date: dt.date) -> dt.date:
    return issue_date + dt.timedelta(days=settings.SELFCARE_PAYMENT_TERM_DAYS)


def bill_issue(
    *,
    account: ServiceAccount,
    period: dt.date,
    issue_date: dt.date | None = None,
    usage: Mapping[str, Decimal] | None = None,
    estimated: bool = False,
) -> Bill:
    """Issue the bill of `account` for `period`; issuing it again returns the same bill.

    `usage` defaults to the period's consumption rows; the bill run passes an
    estimate (`estimated=True`) for a meter that was not read.
    The (account, period) unique constraint, not a prior lookup, is what makes
    two concurrent runs end with one bill.
    """
    period = period.replace(day=1)
    existing = Bill.objects.filter(account=account, period=period).first()
    if existing:
        return existing
    if usage is None:
        usage = {c.unit: c.quantity for c in Consumption.objects.filter(account=account, period=period)}
    # The plan in force on the month's last day: a change that took effect since is not this month's.
    plan = Plan.objects.prefetch_related("tiers", "levies").get(pk=plan_id_for_period(account=account, period=period))
    terms, currency = plan_terms(plan), settings.SELFCARE_CURRENCY
    # A bill on a real reading corrects the estimated bills before it (billing/estimates.py).
    corrections = (
        [] if estimated else estimate_correction_lines(account=account, period=period, plan=terms, currency=currency)
    )
    bill, lines = bill_build(
        account=account,
        plan=terms,
        period=period,
        usage=usage,
        issue_date=issue_date or timezone.localdate(),
        currency=currency,
        extra=[
            *sms_alert_fee_lines(account=account, period=period),
            *plan_change_extra_lines(account=account, period=period),
            *corrections,
        ],
        estimated=estimated,
    )
    try:
        with transaction.atomic():
            bill.save()
            BillLine.objects.bulk_create(lines)
            bill_carry_credit(bill=bill, lines=lines)
            bill_pay_from_credit(bill=bill)
            # The announcement commits with the bill, or not at all.
            bill_announce(bill=bill)
    except IntegrityError:
        return Bill.objects.get(account=account, period=period)
    return bill


def bill_carry_credit(*, bill: Bill, lines: Iterable[BillLine]) -> Decimal:
    """What a new bill's credits left over (its credit-carried line,
    tariffs.bill_compute) pays the account's earlier open bills, the rest goes
    to its credit (`account_credit_carry`); returns the amount carried."""
    carried = sum((line.amount for line in lines if line.kind == BillLine.Kind.CREDIT_CARRIED), Decimal(0))
    if carried <= 0:
        return Decimal(0)
    account_credit_carry(account_id=bill.account_id, amount=carried, currency=bill.currency)
    return carried


def bills_in_paying_order(bills: Iterable[Bill]) -> list[Bill]:
    """Open bills in the order money pays them: the oldest due first."""
    return sorted(bills, key=lambda b: (b.due_date, b.period, b.pk))


def allocation_plan(*, bills: Iterable[Bill], amount: Decimal) -> tuple[list[tuple[Bill, Decimal]], Decimal]:
    """How much of `amount` each bill takes, in the order given, each what it still
    owes until nothing is left: the plan and what is left over. A payment and a
    carried credit pay bills alike."""
    left, plan = amount, []
    for bill in bills:
        if left == 0:
            break
        part = min(left, bill.amount_due)
        if part > 0:
            plan.append((bill, part))
            left -= part
    return plan, left


def account_credit_carry(*, account_id: int, amount: Decimal, currency: str) -> Decimal:
    """Apply a credit carried by a new bill (an estimate correction beyond its
    charges) as a payment is applied: to the account's open bills, oldest first
    (due date, period, id, as payment_apply), the rest to the account's credit;
    returns that rest. Without it, a March estimated too high would stay due,
    go overdue and walk the dunning ladder while the customer is owed money.

    Locks as payments do (payments/locks.py): the account, then its open bills
    by id. Audited like a payment's changes (core.audit.audit_saves: bills are
    written without a save()), and a disconnection order is cancelled, or the
    reconnection ordered, once nothing is overdue (dunning_account_settle)."""
    amount = quantize(amount, currency)
    if amount <= 0:
        return Decimal(0)
    account = ServiceAccount.objects.select_for_update(of=("self",)).select_related("subscriber").get(pk=account_id)
    bills = bills_in_paying_order(
        Bill.objects.select_for_update().filter(Bill.open_q(), account_id=account_id).order_by("pk")
    )
    plan, left = allocation_plan(bills=bills, amount=amount)
    paid, before = [], []
    for bill, part in plan:
        bill.account = account  # the row locked above: the audit scope reads no more
        before.append(copy.copy(bill))
        bill.set_amount_paid(bill.amount_paid + part)
        paid.append(bill)
    bills_paid_write(bills=paid)
    account_before = copy.copy(account)
    if left:
        ServiceAccount.objects.filter(pk=account_id).update(credit=F("credit") + left)
        account.credit += left
    audit_saves(
        updated=[
            *((old, new, BILL_PAID_FIELDS) for old, new in zip(before, paid, strict=True)),
            (account_before, account, ["credit"]),
        ]
    )
    if paid:
        dunning_account_settle(account=account)
    return left


def bill_pay_from_credit(*, bill: Bill) -> Decimal:
    """Pay a new bill from its account's credit (money received beyond the
    earlier bills); returns the amount used. Payments add to the credit under
    the same account row lock (payments/locks.py), so none is used twice."""
    account = ServiceAccount.objects.select_for_update().filter(pk=bill.account_id, credit__gt=0).first()
    if account is None:
        return Decimal(0)
    used = credit_to_use(credit=account.credit, amount_due=bill.amount_due)
    if used <= 0:
        return Decimal(0)
    ServiceAccount.objects.filter(pk=account.pk).update(credit=F("credit") - used)
    bill.set_amount_paid(bill.amount_paid + used)
    bill.save(update_fields=["amount_paid", "amount_due", "status"])
    return used


BILLS_PAID_SQL = "UPDATE billing_bill SET amount_paid = %s, amount_due = %s, status = %s WHERE id = %s"
BILLS_PAID_UNNEST_SQL = (
    "UPDATE billing_bill AS b SET amount_paid = v.paid, amount_due = v.due, status = v.status "
    "FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::text[]) AS v(id, paid, due, status) WHERE b.id = v.id"
)


def bills_paid_write(*, bills: Sequence[Bill]) -> None:
    """Write the paid amount, amount due and status of `bills`, rows the caller
    holds locked and moved with `Bill.set_amount_paid` (a payment applied):
    one UPDATE from arrays on PostgreSQL (a statement per bill elsewhere), without
    the CASE per column and row that `bulk_update` compiles. Sends no signal:
    the caller audits the change (core.audit.audit_saves)."""
    if not bills:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, whatever the number of bills
            cursor.execute(
                BILLS_PAID_UNNEST_SQL,
                [[b.pk for b in bills], [b.amount_paid for b in bills], [b.amount_due for b in bills],
                 [str(b.status) for b in bills]],
            )  # fmt: skip
        else:
            cursor.executemany(BILLS_PAID_SQL, [(b.amount_paid, b.amount_due, b.status, b.pk) for b in bills])


def bills_with_channels(bills: QuerySet[Bill]) -> QuerySet[Bill]:
    """What announcing bills reads: each subscriber and their channels, in a few queries."""
    return bills.select_related("account__subscriber").prefetch_related("account__subscriber__channels")


def bills_flag_overdue(*, today: dt.date | None = None) -> int:
    """Mark open bills past their due date as overdue; returns how many bills
    changed. Safe to run twice. The messages (reminder, overdue notice, warning)
    are the overdue ladder's (billing/dunning.py), one path, so none goes twice."""
    today = today or timezone.localdate()
    due = Bill.objects.filter(Bill.overdue_q(today)).exclude(status=Bill.Status.OVERDUE)
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).values_list("pk", "status"))
        ids = [pk for pk, _status in rows]
        flagged = Bill.objects.filter(pk__in=ids).update(status=Bill.Status.OVERDUE)
        # update() sends no signal: the audit trail gets its entries here.
        for old in sorted({status for _pk, status in rows}):
            audit_bulk(
                model=Bill, pks=[pk for pk, status in rows if status == old], changes={"status": [old, "overdue"]}
            )
    return flagged


def bill_request_paper_copy(*, bill: Bill, requested_by: User) -> PrintRequest:
    """A paper copy for the subscriber's agency to print; asking twice is one request."""
    agency = bill.account.subscriber.agency
    try:
        with transaction.atomic():
            return PrintRequest.objects.create(bill=bill, agency=agency, requested_by=requested_by)
    except IntegrityError:
        return PrintRequest.objects.get(bill=bill, status=PrintRequest.Status.PENDING)


def print_requests_mark_printed(*, requests: Iterable[PrintRequest], printed_by: User) -> int:
    ids = [r.pk for r in requests]
    pending = PrintRequest.objects.filter(pk__in=ids, status=PrintRequest.Status.PENDING)
    now = timezone.now()
    with transaction.atomic():
        printed = list(pending.select_for_update().values_list("pk", flat=True))
        count = PrintRequest.objects.filter(pk__in=printed).update(
            status=PrintRequest.Status.PRINTED, printed_at=now, printed_by=printed_by
        )
        audit_bulk(
            model=PrintRequest,
            pks=printed,
            changes={
                "status": ["pending", "printed"],
                "printed_at": [None, now.isoformat()],
                "printed_by": [None, printed_by.pk],
            },
        )
    return count


# --- Paid SMS alert service ------------------------------------------------


def sms_alert_subscribe(*, account: ServiceAccount, started_on: dt.date) -> SmsAlertSubscription:
    """Record the subscription; subscribing again while one is open changes nothing."""
    open_one = account.sms_alert_subscriptions.filter(ended_on__isnull=True).first()
    if open_one:
        return open_one
    return SmsAlertSubscription.objects.create(account=account, started_on=started_on)
