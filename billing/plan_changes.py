"""Plan changes: a subscriber moves an account to another plan of the same kind.

A change takes effect on the first day of the next period by default. A plan may
allow an immediate change (`Plan.allows_immediate_change`): the account switches
at once and the fixed fee of that month is split by the day between the two
plans, the difference billed on the next bill as one proration line. A plan may
need a supervisor's approval first (`Plan.change_needs_approval`). Both flags are
read on the plan moved *to*: it is what the subscriber is asking for.

How a month is billed, so that proration adds up: a month is priced on the plan
in force on its last day (`plan_id_for_period`). A change from the next period
therefore never touches the month before it, even when that month's bill is
issued after the switch; an immediate change in the middle of a month leaves the
month's bill charging the new plan's fee, and the proration line adds the old
plan's days and takes back the new plan's for them:

    days_old = day of the change - 1          (days on the old plan)
    line     = (old fee - new fee) x days_old / days in the month

quantized to the currency once. When the month was already billed in full on the
old plan, the next month's bill adds the new plan's days instead:
(new fee - old fee) x days_new / days in the month. Leap years and month lengths
come from the calendar, never from a 30-day month.

Row locks, in one order: the account, then its plan change.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.selectors import staff_agency_ids
from core.audit import audit_bulk
from core.dates import month_add
from core.exceptions import ApplicationError
from core.money import quantize

from .messages import PLAN_CHANGE_CONFIRMED, PLAN_CHANGE_PENDING, PLAN_CHANGE_REJECTED, plan_change_announce
from .models import Bill, BillLine, Consumption, Plan, PlanChange, PlanTier, ServiceAccount, Unit
from .sms_alerts import sms_alert_fee_lines
from .tariffs import LineDraft, bill_compute, plan_terms


class PlanChangeRefused(ApplicationError):
    code = "plan_change_refused"


# --- Proration: pure ----------------------------------------------------------


@dataclass(frozen=True)
class Proration:
    """The fixed fee of the month of an immediate change, split by the day."""

    effective_date: dt.date
    month_days: int
    days_old: int  # days of that month on the previous plan (before the change)
    days_new: int  # days on the new plan, the day of the change included
    old_fee: Decimal
    new_fee: Decimal
    currency: str
    # The month's bill was already issued, on the old plan, before the change.
    month_billed: bool
    # The proration line of the next bill (may be negative: a credit).
    amount: Decimal
    # Which bill carries it: that month's, or the next one when it was already billed.
    bill_period: dt.date

    @property
    def days_billed(self) -> int:
        """The days the line is about."""
        return self.days_new if self.month_billed else self.days_old

    @property
    def month_fee(self) -> Decimal:
        """What the month's fixed fee comes to in all: its bill's fee line plus the line."""
        charged = self.old_fee if self.month_billed else self.new_fee
        return quantize(charged, self.currency) + self.amount


def proration_compute(
    *, old_fee: Decimal, new_fee: Decimal, effective_date: dt.date, currency: str, month_billed: bool = False
) -> Proration:
    """The proration of a change taking effect at the start of `effective_date`."""
    month_days = calendar.monthrange(effective_date.year, effective_date.month)[1]
    days_old = effective_date.day - 1
    days_new = month_days - days_old
    period = effective_date.replace(day=1)
    # Multiplied before divided, and quantized once: 20 x 14 / 29, not 20 / 29 x 14.
    if month_billed:
        amount = quantize((new_fee - old_fee) * days_new / month_days, currency)
        bill_period = month_add(period, 1)
    else:
        amount = quantize((old_fee - new_fee) * days_old / month_days, currency)
        bill_period = period
    return Proration(
        effective_date=effective_date, month_days=month_days, days_old=days_old, days_new=days_new,
        old_fee=old_fee, new_fee=new_fee, currency=currency, month_billed=month_billed, amount=amount,
        bill_period=bill_period,
    )  # fmt: skip


# --- Reads ----------------------------------------------------------------------


def plan_change_open(*, account: ServiceAccount) -> PlanChange | None:
    """The account's change not yet in effect (one at most, by constraint)."""
    return (
        PlanChange.objects.filter(account=account, status__in=PlanChange.OPEN_STATUSES)
        .select_related("from_plan", "to_plan")
        .first()
    )


def plan_changes_of(*, account: ServiceAccount) -> QuerySet[PlanChange]:
    return PlanChange.objects.filter(account=account).select_related("from_plan", "to_plan")


def plan_id_for_period(*, account: ServiceAccount, period: dt.date) -> int:
    """The plan `period` is billed on: the one in force on the month's last day.

    The earliest change applied from a later month says what the plan was before
    it; without one, the account's plan is.
    """
    later = (
        PlanChange.objects.filter(
            account=account, status=PlanChange.Status.APPLIED, effective_date__gte=month_add(period, 1)
        )
        .order_by("effective_date", "applied_at", "pk")
        .values_list("from_plan_id", flat=True)
        .first()
    )
    return later or account.plan_id


def plan_ids_for_period(*, period: dt.date, account_ids: Iterable[int] | None = None) -> dict[int, int]:
    """`plan_id_for_period` for many accounts in one query: {account id: plan id}
    for the accounts billed on another plan than their current one (a bill run
    takes the account's own plan for the others)."""
    rows = PlanChange.objects.filter(status=PlanChange.Status.APPLIED, effective_date__gte=month_add(period, 1))
    if account_ids is not None:
        rows = rows.filter(account_id__in=list(account_ids))
    plans: dict[int, int] = {}
    ordered = rows.order_by("account_id", "effective_date", "applied_at", "pk")
    for account_id, from_plan_id in ordered.values_list("account_id", "from_plan_id"):
        plans.setdefault(account_id, from_plan_id)
    return plans


def plan_change_lines_for_period(
    *, period: dt.date, account_ids: Iterable[int] | None = None
) -> dict[int, list[LineDraft]]:
    """The proration lines the bills of `period` add, per account id: one query,
    for a bill run as for one bill."""
    period = period.replace(day=1)
    rows = PlanChange.objects.filter(bill_period=period, status=PlanChange.Status.APPLIED).exclude(proration_amount=0)
    if account_ids is not None:
        rows = rows.filter(account_id__in=list(account_ids))
    lines: dict[int, list[LineDraft]] = {}
    for change in rows.order_by("account_id", "applied_at", "pk"):
        month_days = calendar.monthrange(change.effective_date.year, change.effective_date.month)[1]
        days_old = change.effective_date.day - 1
        billed_later = change.bill_period != change.effective_date.replace(day=1)
        days = month_days - days_old if billed_later else days_old
        lines.setdefault(change.account_id, []).append(
            LineDraft(kind=BillLine.Kind.PRORATION, amount=change.proration_amount, quantity=Decimal(days))
        )
    return lines


def plan_change_extra_lines(*, account: ServiceAccount, period: dt.date) -> list[LineDraft]:
    """What the bill of `account` for `period` adds for plan changes (bill_issue
    and bill runs add them to the bill's lines)."""
    return plan_change_lines_for_period(period=period, account_ids=[account.pk]).get(account.pk, [])


# --- The preview ----------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One row of the comparison: what the current and the new plan say.

    `fmt` tells the page how to write the values: money, unit_price, quantity,
    count or tier (a PlanTier).
    """

    label: str | Promise
    old: Decimal | int | PlanTier | None
    new: Decimal | int | PlanTier | None
    fmt: str

    @property
    def changed(self) -> bool:
        if self.fmt == "tier":
            return _tier_key(self.old) != _tier_key(self.new)  # type: ignore[arg-type]
        return self.old != self.new


def _tier_key(tier: PlanTier | None) -> tuple | None:
    return None if tier is None else (tier.from_quantity, tier.to_quantity, tier.unit_price)


@dataclass(frozen=True)
class BillEstimate:
    """A bill as `tariffs.bill_compute` prices it, before any credit."""

    plan: Plan
    period: dt.date
    lines: list[LineDraft]
    amount_lines: Decimal
    amount_tax: Decimal
    amount_total: Decimal
    currency: str


@dataclass(frozen=True)
class PlanChangePreview:
    account: ServiceAccount
    from_plan: Plan
    to_plan: Plan
    mode: str
    effective_date: dt.date
    needs_approval: bool
    differences: list[Difference]
    currency: str
    # The last month with consumption, and what it would cost on each plan.
    usage_period: dt.date | None = None
    usage: dict[str, Decimal] = field(default_factory=dict)
    estimate_old: BillEstimate | None = None
    estimate_new: BillEstimate | None = None
    proration: Proration | None = None

    @property
    def is_immediate(self) -> bool:
        return self.mode == PlanChange.Mode.IMMEDIATE

    @property
    def usage_lines(self) -> list[tuple[str, str, Decimal]]:
        """(unit, its label, quantity): the unit picks the quantity's format (`usage`)."""
        return [(unit, str(Unit(unit).label), quantity) for unit, quantity in self.usage.items()]

    @property
    def monthly_fee_change(self) -> Decimal:
        return self.to_plan.monthly_fee - self.from_plan.monthly_fee


def _bill_estimate(
    *,
    account: ServiceAccount,
    plan: Plan,
    period: dt.date,
    usage: Mapping[str, Decimal],
    currency: str,
    extra: Iterable[LineDraft] = (),
) -> BillEstimate:
    """The bill of `period` on `plan` for `usage`, priced by `bill_compute` as the
    bill itself will be (levies, the plan's VAT rate, the SMS alert fee and the
    plan-change lines that bill adds), plus `extra` (the proration of the change
    previewed). `plan` comes with its tiers and levies prefetched."""
    lines = [
        *sms_alert_fee_lines(account=account, period=period, currency=currency),
        *plan_change_extra_lines(account=account, period=period),
        *extra,
    ]
    draft = bill_compute(plan=plan_terms(plan), usage=usage, period=period, extra_lines=lines, currency=currency)
    return BillEstimate(
        plan=plan, period=period, lines=list(draft.lines), amount_lines=draft.amount_lines,
        amount_tax=draft.amount_tax, amount_total=draft.amount_total, currency=currency,
    )  # fmt: skip


def _differences(old: Plan, new: Plan) -> list[Difference]:
    rows = [Difference(gettext_lazy("Monthly fee"), old.monthly_fee, new.monthly_fee, "money")]
    if old.is_utility:
        old_tiers, new_tiers = list(old.tiers.all()), list(new.tiers.all())
        for position in range(max(len(old_tiers), len(new_tiers))):
            rows.append(
                Difference(
                    _tranche_label(position + 1),
                    old_tiers[position] if position < len(old_tiers) else None,
                    new_tiers[position] if position < len(new_tiers) else None,
                    "tier",
                )
            )
        return rows
    return [
        *rows,
        Difference(gettext_lazy("Minutes included"), _dec(old.included_minutes), _dec(new.included_minutes), "count"),
        Difference(gettext_lazy("Each extra minute"), old.price_per_minute, new.price_per_minute, "unit_price"),
        Difference(gettext_lazy("SMS included"), _dec(old.included_sms), _dec(new.included_sms), "count"),
        Difference(gettext_lazy("Each extra SMS"), old.price_per_sms, new.price_per_sms, "unit_price"),
        Difference(gettext_lazy("Data included (GB)"), old.included_data_gb, new.included_data_gb, "quantity"),
        Difference(gettext_lazy("Each extra GB"), old.price_per_gb, new.price_per_gb, "unit_price"),
    ]


def _dec(count: int | None) -> Decimal | None:
    # Counts are written by the same number filter as quantities (1 000 in French).
    return None if count is None else Decimal(count)


def _tranche_label(position: int) -> Promise:
    return gettext_lazy("Tranche %(n)s") % {"n": position}  # type: ignore[return-value]


def plan_change_preview(
    *, account: ServiceAccount, to_plan: Plan, mode: str, today: dt.date | None = None
) -> PlanChangePreview:
    """What moving `account` to `to_plan` changes on the next bill; raises
    PlanChangeRefused for a change that would be refused."""
    today = today or timezone.localdate()
    _check(account=account, to_plan=to_plan, mode=mode)
    if plan_change_open(account=account) is not None:
        raise _already_open()
    currency = settings.SELFCARE_CURRENCY
    from_plan = Plan.objects.prefetch_related("tiers", "levies").get(pk=account.plan_id)
    to_plan = Plan.objects.prefetch_related("tiers", "levies").get(pk=to_plan.pk)
    proration = None
    effective_date = month_add(today, 1)
    # The first bill on the new plan: the month it starts in (a month is billed on the
    # plan in force on its last day), or the next one when that month was billed already.
    bill_period = effective_date.replace(day=1)
    if mode == PlanChange.Mode.IMMEDIATE:
        effective_date = today
        proration = proration_compute(
            old_fee=from_plan.monthly_fee, new_fee=to_plan.monthly_fee, effective_date=today, currency=currency,
            month_billed=_month_billed(account=account, day=today),
        )  # fmt: skip
        bill_period = proration.bill_period
    last = Consumption.objects.filter(account=account).order_by("-period").values_list("period", flat=True).first()
    usage: dict[str, Decimal] = {}
    estimates: dict[str, BillEstimate | None] = {"old": None, "new": None}
    if last is not None:
        usage = {c.unit: c.quantity for c in Consumption.objects.filter(account=account, period=last)}
        same = {"account": account, "period": bill_period, "usage": usage, "currency": currency}
        estimates = {
            "old": _bill_estimate(plan=from_plan, **same),
            "new": _bill_estimate(plan=to_plan, extra=_proration_lines(proration), **same),
        }
    return PlanChangePreview(
        account=account, from_plan=from_plan, to_plan=to_plan, mode=mode, effective_date=effective_date,
        needs_approval=to_plan.change_needs_approval, differences=_differences(from_plan, to_plan),
        currency=currency, usage_period=last, usage=_usage_in_order(usage), estimate_old=estimates["old"],
        estimate_new=estimates["new"], proration=proration,
    )  # fmt: skip


def _usage_in_order(usage: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {unit: usage[unit] for unit in Unit.values if unit in usage}


def _proration_lines(proration: Proration | None) -> list[LineDraft]:
    if proration is None or not proration.amount:
        return []
    return [LineDraft(kind=BillLine.Kind.PRORATION, amount=proration.amount, quantity=Decimal(proration.days_billed))]


def _month_billed(*, account: ServiceAccount, day: dt.date) -> bool:
    return Bill.objects.filter(account=account, period=day.replace(day=1)).exists()


# --- Writes ---------------------------------------------------------------------


def plan_change_blocked(*, account: ServiceAccount) -> PlanChangeRefused | None:
    """Why no plan change can be asked on this account at all, or None."""
    if account.status != ServiceAccount.Status.ACTIVE:
        return PlanChangeRefused(
            _("The plan of an account that is not active cannot be changed."), code="account_inactive"
        )
    if account.billing_mode != ServiceAccount.BillingMode.POSTPAID:
        return PlanChangeRefused(_("Plans of prepaid accounts are changed at the agency."), code="not_postpaid")
    return None


def _check(*, account: ServiceAccount, to_plan: Plan, mode: str) -> None:
    """The rules of a change, each with its own message."""
    blocked = plan_change_blocked(account=account)
    if blocked:
        raise blocked
    if to_plan.pk == account.plan_id:
        raise PlanChangeRefused(_("This is already the account's plan."), code="same_plan")
    if to_plan.kind != account.kind:
        raise PlanChangeRefused(_("This plan is for another kind of service."), code="other_kind")
    if not to_plan.is_active:
        raise PlanChangeRefused(_("This plan is no longer offered."), code="plan_retired")
    if mode not in PlanChange.Mode.values:
        raise PlanChangeRefused(_("Choose when the change takes effect."), code="bad_mode")
    if mode == PlanChange.Mode.IMMEDIATE and not to_plan.allows_immediate_change:
        raise PlanChangeRefused(
            _("A move to this plan takes effect from the next period only."), code="immediate_not_allowed"
        )


def _staff_may(user: User, *, permission: str, agency_id: int) -> bool:
    agency_ids = staff_agency_ids(user)
    return user.is_staff and user.has_perm(permission) and (agency_ids is None or agency_id in agency_ids)


def _require_holder_or_staff(*, user: User, account: ServiceAccount, permission: str) -> None:
    """The account's own subscriber, or staff of its agency with `permission`."""
    subscriber = account.subscriber
    if user.pk == subscriber.user_id or _staff_may(user, permission=permission, agency_id=subscriber.agency_id):
        return
    raise PlanChangeRefused(_("You are not allowed to change this account's plan."), code="not_allowed")


def _already_open() -> PlanChangeRefused:
    return PlanChangeRefused(
        _("A plan change is already waiting on this account: cancel it first to ask for another."),
        code="already_open",
    )


def _account_lock(account_id: int) -> ServiceAccount:
    return ServiceAccount.objects.select_for_update().select_related("subscriber").get(pk=account_id)


def plan_change_request(
    *,
    account: ServiceAccount,
    to_plan: Plan,
    requested_by: User,
    mode: str = PlanChange.Mode.NEXT_PERIOD,
    today: dt.date | None = None,
) -> PlanChange:
    """Ask to move `account` to `to_plan`: scheduled from the next period, applied
    at once (immediate), or waiting for approval when the plan says so. A
    confirmation goes to the subscriber's channels in the same transaction."""
    today = today or timezone.localdate()
    with transaction.atomic():
        # The account's lock makes two requests at once (two tabs, a double click)
        # queue: the second finds the first. The unique constraint stands behind it.
        account = _account_lock(account.pk)
        _require_holder_or_staff(user=requested_by, account=account, permission="billing.add_planchange")
        to_plan = Plan.objects.get(pk=to_plan.pk)  # as it is now, not as the page saw it
        _check(account=account, to_plan=to_plan, mode=mode)
        if PlanChange.objects.filter(account=account, status__in=PlanChange.OPEN_STATUSES).exists():
            raise _already_open()
        change = PlanChange(
            account=account, kind=account.kind, from_plan_id=account.plan_id, to_plan=to_plan, mode=mode,
            requested_by=requested_by, currency=settings.SELFCARE_CURRENCY, effective_date=month_add(today, 1),
        )  # fmt: skip
        immediate = mode == PlanChange.Mode.IMMEDIATE
        if to_plan.change_needs_approval:
            change.status = PlanChange.Status.PENDING_APPROVAL
            change.effective_date = today if immediate else change.effective_date
        elif immediate:
            _apply_now(change=change, account=account, to_plan=to_plan, today=today)
        else:
            change.status = PlanChange.Status.SCHEDULED
        try:
            with transaction.atomic():
                change.save()
        except IntegrityError:
            raise _already_open() from None
        if change.status == PlanChange.Status.APPLIED:
            _switch(account=account, to_plan_id=change.to_plan_id)
        plan_change_announce(
            change=change,
            event=PLAN_CHANGE_PENDING if change.status == PlanChange.Status.PENDING_APPROVAL else PLAN_CHANGE_CONFIRMED,
        )
    return change


def _apply_now(*, change: PlanChange, account: ServiceAccount, to_plan: Plan, today: dt.date) -> None:
    """Fill `change` in as applied today, with its proration (not saved)."""
    from_fee = Plan.objects.values_list("monthly_fee", flat=True).get(pk=change.from_plan_id)
    proration = proration_compute(
        old_fee=from_fee, new_fee=to_plan.monthly_fee, effective_date=today, currency=change.currency,
        month_billed=_month_billed(account=account, day=today),
    )  # fmt: skip
    change.status = PlanChange.Status.APPLIED
    change.effective_date = today
    change.applied_at = timezone.now()
    change.proration_amount = proration.amount
    change.bill_period = proration.bill_period if proration.amount else None


def _switch(*, account: ServiceAccount, to_plan_id: int) -> None:
    # save(), not update(): the audit trail records the account's new plan.
    account.plan_id = to_plan_id
    account.save(update_fields=["plan"])


def plan_change_cancel(*, change: PlanChange, cancelled_by: User, today: dt.date | None = None) -> PlanChange:
    """Withdraw a change before it takes effect (the subscriber, or staff of the agency)."""
    today = today or timezone.localdate()
    account = ServiceAccount.objects.select_related("subscriber").get(pk=change.account_id)
    _require_holder_or_staff(user=cancelled_by, account=account, permission="billing.approve_planchange")
    now = timezone.now()
    with transaction.atomic():
        # Compare-and-set against the daily switch: one of the two wins. A scheduled
        # change whose day has come has taken effect, even before the switch ran.
        cancelled = (
            PlanChange.objects.filter(pk=change.pk, status__in=PlanChange.OPEN_STATUSES)
            .exclude(status=PlanChange.Status.SCHEDULED, effective_date__lte=today)
            .update(status=PlanChange.Status.CANCELLED, decided_by=cancelled_by, decided_at=now)
        )
        if not cancelled:
            raise PlanChangeRefused(
                _("This plan change has already taken effect or was closed: it can no longer be cancelled."),
                code="not_open",
            )
        audit_bulk(model=PlanChange, pks=[change.pk], changes={"status": [change.status, "cancelled"]})
    change.refresh_from_db()
    return change


def plan_changes_apply_due(*, today: dt.date | None = None) -> int:
    """Switch the accounts whose scheduled change starts today or earlier; returns
    how many were applied. Each change is claimed by compare-and-set, so two runs
    at once, or a run repeated, apply each change once."""
    today = today or timezone.localdate()
    due = PlanChange.objects.filter(status=PlanChange.Status.SCHEDULED, effective_date__lte=today)
    applied = 0
    for pk, account_id in list(due.order_by("effective_date", "pk").values_list("pk", "account_id")):
        applied += _apply_scheduled(pk=pk, account_id=account_id)
    return applied


def _apply_scheduled(*, pk: int, account_id: int) -> int:
    now = timezone.now()
    with transaction.atomic():
        account = _account_lock(account_id)
        claimed = PlanChange.objects.filter(pk=pk, status=PlanChange.Status.SCHEDULED).update(
            status=PlanChange.Status.APPLIED, applied_at=now
        )
        if not claimed:
            return 0  # another run, or the subscriber's cancel, came first
        change = PlanChange.objects.get(pk=pk)
        stale = _stale_reason(account=account, change=change)
        if stale:
            # The account was closed, or its plan changed by other means since:
            # switching now would undo that. Kept with the reason, never applied.
            PlanChange.objects.filter(pk=pk).update(
                status=PlanChange.Status.CANCELLED, applied_at=None, decided_at=now, reason=stale
            )
            audit_bulk(model=PlanChange, pks=[pk], changes={"status": ["scheduled", "cancelled"]})
            return 0
        _switch(account=account, to_plan_id=change.to_plan_id)
        audit_bulk(model=PlanChange, pks=[pk], changes={"status": ["scheduled", "applied"]})
    return 1


def _stale_reason(*, account: ServiceAccount, change: PlanChange) -> str:
    if account.status == ServiceAccount.Status.CLOSED:
        return _("The account was closed before the change took effect.")
    if account.plan_id != change.from_plan_id:
        return _("The account's plan was changed by other means before this change took effect.")
    return ""


# --- Staff decisions ------------------------------------------------------------


def _decision_lock(*, change: PlanChange, decided_by: User) -> tuple[ServiceAccount, PlanChange]:
    account = _account_lock(change.account_id)
    if not _staff_may(decided_by, permission="billing.approve_planchange", agency_id=account.subscriber.agency_id):
        raise PlanChangeRefused(_("You are not allowed to do this for this agency."), code="not_allowed")
    locked = PlanChange.objects.select_for_update().get(pk=change.pk)
    if locked.status != PlanChange.Status.PENDING_APPROVAL:
        raise PlanChangeRefused(_("This plan change was already decided or withdrawn."), code="already_decided")
    if locked.requested_by_id == decided_by.pk:
        raise PlanChangeRefused(_("The one who asked for a change cannot decide it."), code="own_request")
    return account, locked


def plan_change_approve(*, change: PlanChange, decided_by: User, today: dt.date | None = None) -> PlanChange:
    """A supervisor of the account's agency lets a change go ahead: scheduled
    from the next period after today at the earliest, or applied at once."""
    today = today or timezone.localdate()
    with transaction.atomic():
        account, change = _decision_lock(change=change, decided_by=decided_by)
        to_plan = Plan.objects.get(pk=change.to_plan_id)
        if account.plan_id != change.from_plan_id:
            raise PlanChangeRefused(
                _("The account's plan changed since this was asked; reject it and ask again."), code="stale"
            )
        _check(account=account, to_plan=to_plan, mode=change.mode)
        change.decided_by, change.decided_at = decided_by, timezone.now()
        if change.mode == PlanChange.Mode.IMMEDIATE:
            _apply_now(change=change, account=account, to_plan=to_plan, today=today)
        else:
            # Never backdated: approved after the date it asked for, it starts a period later.
            change.status = PlanChange.Status.SCHEDULED
            change.effective_date = max(change.effective_date, month_add(today, 1))
        change.save()  # the audit trail records it (backoffice AUDITED_MODELS)
        if change.status == PlanChange.Status.APPLIED:
            _switch(account=account, to_plan_id=change.to_plan_id)
        plan_change_announce(change=change, event=PLAN_CHANGE_CONFIRMED)
    return change


def plan_change_reject(*, change: PlanChange, decided_by: User, reason: str = "") -> PlanChange:
    """A supervisor of the account's agency refuses a change; the subscriber is told."""
    with transaction.atomic():
        _account, change = _decision_lock(change=change, decided_by=decided_by)
        change.status = PlanChange.Status.REJECTED
        change.decided_by, change.decided_at = decided_by, timezone.now()
        change.reason = (reason or "").strip()
        change.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        plan_change_announce(change=change, event=PLAN_CHANGE_REJECTED)
    return change
