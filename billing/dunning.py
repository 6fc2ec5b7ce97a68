"""The overdue ladder (dunning): reminders, overdue notices, disconnection
warnings, and the disconnection and reconnection orders of the field team.

Every step taken is a `DunningStep` row, unique per (bill, step): a re-run, a
catch-up or two workers at once never take a step twice, and its message is
written to the outbox in the same transaction (dedupe key: event, bill, channel;
the same keys the hourly sweep used before the ladder, so a bill reminded or
noticed by the old path is not messaged again).

Rules for day `today` (offsets from each bill's due date, `DunningLadderStep`,
defaults -3, +1, +15, +30):

- **Reminder**, per open bill, from `due + reminder` up to the due date itself;
  never for a bill already overdue (a missed run does not remind late).
  Exempt accounts still get reminders: they tell, they do not threaten.
- **Overdue notice**, per open bill, from `due + notice` until the warning's
  day; after that the warning says more, so a late run sends the warning only.
- **Disconnection warning**, per account, once the oldest overdue bill is
  `warning` days late and no warning covers a bill still open. It names the
  disconnection date: `due + order`, or `today + SELFCARE_DUNNING_MIN_NOTICE_DAYS`
  when a late run (or an exemption that ended) would otherwise give less notice.
- **Disconnection order**, per account, on the date the warning gave, for the
  field team (no message: the warning was the message); never without a
  warning, never a second one while one is open or carried out.
- Exempt accounts (`DunningExemption` running today) and accounts that are not
  active get no notice, warning or order; their days still count, and when the
  exemption ends the ladder resumes with the rules above.
- **Settling**: once nothing is overdue, an order not yet carried out is
  cancelled, and a carried-out one gets its one reconnection order. Payments
  call `dunning_account_settle` under the account lock, so the reconnection
  order is there when the payment commits; the daily run catches every other
  way of paying (credit, correction).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from core.audit import audit_as, audit_bulk
from core.exceptions import ApplicationError
from core.money import Money
from notifications.services import notify

from . import selectors
from .messages import DISCONNECTION_WARNING, DUE_REMINDER, OVERDUE_NOTICE, bill_context
from .models import (
    Bill,
    DunningExemption,
    DunningLadderStep,
    DunningStep,
    DunningStepKind,
    FieldOrder,
    ServiceAccount,
)

Kind = DunningStepKind

LADDER_DEFAULTS: dict[str, int] = {
    Kind.REMINDER: -3,
    Kind.OVERDUE_NOTICE: 1,
    Kind.DISCONNECTION_WARNING: 15,
    Kind.DISCONNECTION_ORDER: 30,
}


@dataclass(frozen=True)
class Ladder:
    """Days from the due date of each step; None: the step is switched off."""

    reminder: int | None
    overdue_notice: int | None
    warning: int | None
    order: int | None

    def planned_disconnection(self, due_date: dt.date) -> dt.date | None:
        return None if self.order is None else due_date + dt.timedelta(days=self.order)


def ladder_get() -> Ladder:
    """The ladder as configured: rows of `DunningLadderStep` over the defaults."""
    days: dict[str, int | None] = dict(LADDER_DEFAULTS)
    for row in DunningLadderStep.objects.exclude(kind=Kind.RECONNECTION_ORDER):
        days[row.kind] = row.days_after_due if row.is_active else None
    return Ladder(
        reminder=days[Kind.REMINDER],
        overdue_notice=days[Kind.OVERDUE_NOTICE],
        warning=days[Kind.DISCONNECTION_WARNING],
        order=days[Kind.DISCONNECTION_ORDER],
    )


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


# --- Which accounts have something to do (set-based) ------------------------


def dunning_candidates(*, today: dt.date, ladder: Ladder) -> list[int]:
    """Ids of the accounts that may have a step due today: a few anti-joins,
    not a walk over every account. A superset is harmless (the per-account
    pass decides); missing one is not."""
    open_bills = Bill.objects.filter(Bill.open_q())
    step_on_bill = lambda kind: DunningStep.objects.filter(bill=OuterRef("pk"), kind=kind)  # noqa: E731
    selections = []
    if ladder.reminder is not None:
        selections.append(
            open_bills.filter(due_date__gte=today, due_date__lte=today - _days(ladder.reminder)).exclude(
                Exists(step_on_bill(Kind.REMINDER))
            )
        )
    if ladder.overdue_notice is not None:
        notice = open_bills.filter(due_date__lte=today - _days(ladder.overdue_notice))
        if ladder.warning is not None:
            notice = notice.filter(due_date__gt=today - _days(ladder.warning))
        selections.append(notice.exclude(Exists(step_on_bill(Kind.OVERDUE_NOTICE))))
    if ladder.warning is not None:
        warned = DunningStep.objects.filter(account=OuterRef("account_id"), kind=Kind.DISCONNECTION_WARNING).filter(
            Bill.open_q("bill__")
        )
        selections.append(open_bills.filter(due_date__lte=today - _days(ladder.warning)).exclude(Exists(warned)))
    ids: set[int] = set()
    for bills in selections:
        ids.update(bills.values_list("account_id", flat=True).distinct())
    if ladder.order is not None:
        ordered = DunningStep.objects.filter(bill=OuterRef("bill_id"), kind=Kind.DISCONNECTION_ORDER)
        due_orders = (
            DunningStep.objects.filter(kind=Kind.DISCONNECTION_WARNING, disconnection_date__lte=today)
            .filter(Bill.open_q("bill__"))
            .exclude(Exists(ordered))
        )
        ids.update(due_orders.values_list("account_id", flat=True).distinct())
    # Disconnections whose account owes nothing overdue any more: cancel or reconnect.
    overdue = Bill.objects.filter(Bill.overdue_q(today), account=OuterRef("account_id"))
    unsettled = FieldOrder.objects.filter(
        kind=FieldOrder.Kind.DISCONNECTION,
        status__in=[*FieldOrder.OPEN_STATUSES, FieldOrder.Status.EXECUTED],
        reconnection__isnull=True,
    ).exclude(Exists(overdue))
    ids.update(unsettled.values_list("account_id", flat=True))
    return sorted(ids)


# --- One account ------------------------------------------------------------


def _step_take(
    *, account: ServiceAccount, bill: Bill, kind: str, today: dt.date, disconnection_date: dt.date | None = None
) -> DunningStep | None:
    """Record a step; None when it was already taken (the unique constraint decides)."""
    try:
        with transaction.atomic():
            return DunningStep.objects.create(
                account=account, bill=bill, kind=kind, taken_on=today, disconnection_date=disconnection_date
            )
    except IntegrityError:
        if DunningStep.objects.filter(bill=bill, kind=kind).exists():
            return None
        raise


def _notify_step(*, step: DunningStep, event: Any, bill: Bill, account: ServiceAccount, extra: dict[str, Any]) -> None:
    bill.account = account
    written = notify(
        event=event,
        subscriber=account.subscriber,
        object_key=bill.number,
        reference=account.number,
        context={**bill_context(bill), **extra},
    )
    if written:
        DunningStep.objects.filter(pk=step.pk).update(messages=written)
        step.messages = written


def exemption_active(*, account: ServiceAccount, today: dt.date) -> DunningExemption | None:
    return account.dunning_exemptions.filter(DunningExemption.active_q(today)).order_by("-starts_on").first()


def _account_lock(account_id: int) -> ServiceAccount:
    # The lock payments take first (payments/locks.py): the ladder and a payment
    # of the same account take turns, so a reconnection is never missed.
    return ServiceAccount.objects.select_for_update(of=("self",)).select_related("subscriber").get(pk=account_id)


def dunning_account_advance(*, account_id: int, today: dt.date, ladder: Ladder | None = None) -> list[DunningStep]:
    """Take every step due today for one account, in one transaction; returns those taken."""
    ladder = ladder or ladder_get()
    taken: list[DunningStep] = []
    with transaction.atomic():
        account = _account_lock(account_id)
        bills = sorted(Bill.objects.filter(Bill.open_q(), account=account), key=lambda b: (b.due_date, b.pk))
        done = set(DunningStep.objects.filter(bill__in=bills).values_list("bill_id", "kind"))
        exempt = exemption_active(account=account, today=today) is not None
        # Postpaid accounts in service only: a closed or suspended one is not cut again.
        threatened = not exempt and account.status == ServiceAccount.Status.ACTIVE

        for bill in bills:
            days = (today - bill.due_date).days
            if ladder.reminder is not None and ladder.reminder <= days <= 0 and (bill.pk, Kind.REMINDER) not in done:
                step = _step_take(account=account, bill=bill, kind=Kind.REMINDER, today=today)
                if step:
                    _notify_step(step=step, event=DUE_REMINDER, bill=bill, account=account, extra={})
                    taken.append(step)
            notice_window = (
                ladder.overdue_notice is not None
                and days >= max(ladder.overdue_notice, 1)
                and (ladder.warning is None or days < ladder.warning)
            )
            if threatened and notice_window and (bill.pk, Kind.OVERDUE_NOTICE) not in done:
                step = _step_take(account=account, bill=bill, kind=Kind.OVERDUE_NOTICE, today=today)
                if step:
                    planned = ladder.planned_disconnection(bill.due_date)
                    extra = {"disconnection_date": planned} if planned else {}
                    _notify_step(step=step, event=OVERDUE_NOTICE, bill=bill, account=account, extra=extra)
                    taken.append(step)

        overdue = [b for b in bills if b.due_date < today]
        warning = (
            DunningStep.objects.filter(account=account, kind=Kind.DISCONNECTION_WARNING, bill__in=overdue)
            .order_by("bill__due_date", "pk")
            .first()
        )
        if threatened and overdue and warning is None and ladder.warning is not None:
            oldest = overdue[0]
            if (today - oldest.due_date).days >= ladder.warning:
                order_day = ladder.planned_disconnection(oldest.due_date) or today
                disconnection_date = max(order_day, today + _days(settings.SELFCARE_DUNNING_MIN_NOTICE_DAYS))
                warning = _step_take(
                    account=account,
                    bill=oldest,
                    kind=Kind.DISCONNECTION_WARNING,
                    today=today,
                    disconnection_date=disconnection_date,
                )
                if warning:
                    owed = sum((b.amount_due for b in overdue), Decimal(0))
                    _notify_step(
                        step=warning,
                        event=DISCONNECTION_WARNING,
                        bill=oldest,
                        account=account,
                        extra={"amount": Money(owed, oldest.currency), "disconnection_date": disconnection_date},
                    )
                    taken.append(warning)
        if (
            threatened
            and ladder.order is not None
            and warning is not None
            and warning.disconnection_date <= today
            and not selectors.disconnection_in_force(account_id=account.pk)
        ):
            step = _step_take(account=account, bill=warning.bill, kind=Kind.DISCONNECTION_ORDER, today=today)
            if step:
                FieldOrder.objects.create(
                    kind=FieldOrder.Kind.DISCONNECTION,
                    step=step,
                    account=account,
                    agency_id=account.subscriber.agency_id,
                    ordered_on=today,
                )
                taken.append(step)
        if not overdue:
            taken += _settle(account=account, today=today)
    return taken


def _settle(*, account: ServiceAccount, today: dt.date) -> list[DunningStep]:
    """Nothing is overdue any more: cancel what the field team has not done yet,
    order a reconnection for what it has. Under the account lock."""
    taken = []
    orders = FieldOrder.objects.filter(
        account=account,
        kind=FieldOrder.Kind.DISCONNECTION,
        status__in=[*FieldOrder.OPEN_STATUSES, FieldOrder.Status.EXECUTED],
        reconnection__isnull=True,
    ).select_related("step")
    for order in orders:
        if order.status in FieldOrder.OPEN_STATUSES:
            _order_close(order=order, status=FieldOrder.Status.CANCELLED, by=None, note="paid")
            continue
        step = _step_take(account=account, bill=order.step.bill, kind=Kind.RECONNECTION_ORDER, today=today)
        if step:
            FieldOrder.objects.create(
                kind=FieldOrder.Kind.RECONNECTION,
                step=step,
                account=account,
                agency_id=account.subscriber.agency_id,
                reconnects=order,
                ordered_on=today,
            )
            taken.append(step)
    return taken


def dunning_account_settle(*, account: ServiceAccount, today: dt.date | None = None) -> list[DunningStep]:
    """After a payment (payments call it under the account lock, in their
    transaction): a reconnection order or a cancelled disconnection order as
    soon as nothing is overdue; nothing otherwise. Cheap when there is no order."""
    today = today or timezone.localdate()
    if not selectors.disconnection_in_force(account_id=account.pk):
        return []
    if Bill.objects.filter(Bill.overdue_q(today), account=account).exists():
        return []
    with transaction.atomic():
        return _settle(account=_account_lock(account.pk), today=today)


@dataclass(frozen=True)
class DunningRunResult:
    accounts: int
    steps: dict[str, int]


def dunning_run(*, today: dt.date | None = None) -> DunningRunResult:
    """The daily pass (Celery beat `dunning_run`): every account with a step due
    moves on, one transaction each, so one failure stops only that account."""
    today = today or timezone.localdate()
    ladder = ladder_get()
    counts: Counter[str] = Counter()
    candidates = dunning_candidates(today=today, ladder=ladder)
    for account_id in candidates:
        for step in dunning_account_advance(account_id=account_id, today=today, ladder=ladder):
            counts[step.kind] += 1
    return DunningRunResult(accounts=len(candidates), steps=dict(counts))


# --- Field orders (the back office) -------------------------------------------


def _order_close(*, order: FieldOrder, status: str, by: User | None, note: str = "") -> bool:
    updated = FieldOrder.objects.filter(pk=order.pk, status__in=FieldOrder.OPEN_STATUSES).update(
        status=status, closed_at=timezone.now(), closed_by=by, note=note or order.note
    )
    if updated:
        _audit_order(order, by=by, changes={"status": [order.status, status]})
        order.refresh_from_db()
    return bool(updated)


def _audit_order(order: FieldOrder, *, by: User | None, changes: dict[str, list[Any]]) -> None:
    # update() sends no signal: the trail gets its entry here.
    if by is not None:
        with audit_as(by):
            audit_bulk(model=FieldOrder, pks=[order.pk], changes=changes)
    else:
        audit_bulk(model=FieldOrder, pks=[order.pk], changes=changes)


def field_orders_mark_printed(*, orders: list[FieldOrder], by: User) -> int:
    """The field team's sheets were printed; only orders still to print move."""
    now = timezone.now()
    ids = list(
        FieldOrder.objects.filter(pk__in=[o.pk for o in orders], status=FieldOrder.Status.TO_PRINT).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        count = FieldOrder.objects.filter(pk__in=ids, status=FieldOrder.Status.TO_PRINT).update(
            status=FieldOrder.Status.PRINTED, printed_at=now, printed_by=by
        )
        with audit_as(by):
            audit_bulk(model=FieldOrder, pks=ids, changes={"status": ["to_print", "printed"]})
    return count


def field_order_execute(*, order: FieldOrder, by: User, note: str = "") -> FieldOrder:
    """The field team did it: the account is disconnected (or back in service)."""
    with transaction.atomic():
        account = _account_lock(order.account_id)
        if not _order_close(order=order, status=FieldOrder.Status.EXECUTED, by=by, note=note):
            raise ApplicationError("This order is already closed.", code="order_closed")
        new_status = (
            ServiceAccount.Status.DISCONNECTED
            if order.kind == FieldOrder.Kind.DISCONNECTION
            else ServiceAccount.Status.ACTIVE
        )
        if account.status != new_status:
            with audit_as(by):
                account.status = new_status
                account.save(update_fields=["status"])
    return order


def field_order_cancel(*, order: FieldOrder, by: User, note: str) -> FieldOrder:
    if not note.strip():
        raise ApplicationError("Say why the order is cancelled.", code="reason_required")
    if not _order_close(order=order, status=FieldOrder.Status.CANCELLED, by=by, note=note):
        raise ApplicationError("This order is already closed.", code="order_closed")
    return order


# --- Exemptions -------------------------------------------------------------


def dunning_exemption_grant(
    *,
    account: ServiceAccount,
    reason: str,
    note: str,
    starts_on: dt.date,
    ends_on: dt.date | None,
    granted_by: User,
    today: dt.date | None = None,
) -> DunningExemption:
    """Exempt an account from notices, warnings and disconnection (audited). One
    that runs today also cancels a disconnection order not yet carried out."""
    if reason not in DunningExemption.Reason.values:
        raise ApplicationError("Unknown exemption reason.", code="validation_error")
    if reason == DunningExemption.Reason.OTHER and not note.strip():
        raise ApplicationError("Say why the account is exempted.", code="reason_required")
    if ends_on is not None and ends_on < starts_on:
        raise ApplicationError("The exemption ends before it starts.", code="validation_error")
    with transaction.atomic(), audit_as(granted_by):
        account = _account_lock(account.pk)
        exemption = DunningExemption.objects.create(
            account=account, reason=reason, note=note.strip(), starts_on=starts_on, ends_on=ends_on,
            granted_by=granted_by,
        )  # fmt: skip
        if DunningExemption.objects.filter(
            DunningExemption.active_q(today or timezone.localdate()), pk=exemption.pk
        ).exists():
            pending = FieldOrder.objects.filter(
                Q(status__in=FieldOrder.OPEN_STATUSES), account=account, kind=FieldOrder.Kind.DISCONNECTION
            )
            for order in pending:
                _order_close(order=order, status=FieldOrder.Status.CANCELLED, by=granted_by, note="exempted")
    return exemption


def dunning_exemption_end(*, exemption: DunningExemption, ends_on: dt.date, by: User) -> DunningExemption:
    """Lift an exemption from `ends_on` (its last day); the ladder resumes the day after."""
    if ends_on < exemption.starts_on:
        raise ApplicationError("The exemption ends before it starts.", code="validation_error")
    with audit_as(by):
        exemption.ends_on = ends_on
        exemption.save(update_fields=["ends_on"])
    return exemption
