"""Reads for the subscriber pages. Every query is scoped to one subscriber, and
none of them grows with the length of an account's history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Subscriber
from core.dates import month_add

from .models import PRIMARY_UNIT, Bill, Consumption, Plan, ServiceAccount


def accounts_of(*, subscriber: Subscriber) -> QuerySet[ServiceAccount]:
    return ServiceAccount.objects.filter(subscriber=subscriber)


def bills_of(*, subscriber: Subscriber) -> QuerySet[Bill]:
    return Bill.objects.filter(account__subscriber=subscriber)


def _open_bill(today: dt.date | None = None) -> Q:
    return Bill.overdue_q(today, prefix="bills__") if today else Bill.open_q(prefix="bills__")


def account_list_for_dashboard(*, subscriber: Subscriber, today: dt.date) -> QuerySet[ServiceAccount]:
    """Each account with what is due, the next due date, its overdue count and last bill.

    One query whatever the history: aggregates over open bills, and the last
    bill through a correlated subquery on the (account, period) unique index.
    """
    last_bill = Bill.objects.filter(account=OuterRef("pk")).exclude(status=Bill.Status.CANCELLED).order_by("-period")
    return (
        accounts_of(subscriber=subscriber)
        .select_related("plan")
        .annotate(
            amount_due=Coalesce(
                Sum("bills__amount_due", filter=_open_bill()),
                Value(Decimal(0)),
                output_field=DecimalField(max_digits=14, decimal_places=3),
            ),
            next_due_date=Min("bills__due_date", filter=_open_bill()),
            overdue_count=Count("bills", filter=_open_bill(today)),
            last_bill_number=Subquery(last_bill.values("number")[:1]),
            last_bill_period=Subquery(last_bill.values("period")[:1]),
            last_bill_total=Subquery(last_bill.values("amount_total")[:1]),
            last_bill_currency=Subquery(last_bill.values("currency")[:1]),
        )
        .order_by("kind", "number")
    )


def bill_list(
    *,
    subscriber: Subscriber,
    account_number: str | None = None,
    status: str | None = None,
    year: int | None = None,
    today: dt.date | None = None,
) -> QuerySet[Bill]:
    """The subscriber's bills, newest first, filtered as the bills page asks.

    "overdue" means overdue today (open and past due), not only the bills the
    hourly sweep has already flagged.
    """
    qs = bills_of(subscriber=subscriber).select_related("account")
    if account_number:
        qs = qs.filter(account__number=account_number)
    if status == Bill.Status.OVERDUE and today:
        qs = qs.filter(Bill.overdue_q(today))
    elif status:
        qs = qs.filter(status=status)
    if year:
        qs = qs.filter(period__year=year)
    return qs.order_by("-period", "account__number")


def bill_years(*, subscriber: Subscriber) -> list[int]:
    return [d.year for d in bills_of(subscriber=subscriber).dates("period", "year", order="DESC")]


def bill_get(*, subscriber: Subscriber, number: str) -> Bill:
    """Raises Bill.DoesNotExist for a bill that is not the subscriber's."""
    return bills_of(subscriber=subscriber).select_related("account", "account__plan").get(number=number)


@dataclass(frozen=True)
class ConsumptionPoint:
    period: dt.date
    quantity: Decimal
    meter_index: Decimal | None
    year_before: Decimal | None

    @property
    def change_percent(self) -> Decimal | None:
        """Change against the same month a year earlier, or None without a base."""
        if not self.year_before:
            return None
        return ((self.quantity - self.year_before) * 100 / self.year_before).quantize(Decimal("0.1"))


def consumption_history(*, account: ServiceAccount, periods: int = 24) -> list[ConsumptionPoint]:
    """The last `periods` months of the account's main unit, oldest first,
    each with the same month a year before. One query of periods + 12 rows."""
    unit = PRIMARY_UNIT[account.kind]
    recent = list(
        Consumption.objects.filter(account=account, unit=unit)
        .order_by("-period")
        .values("period", "quantity", "meter_index")[: periods + 12]
    )
    by_period = {row["period"]: row for row in recent}
    shown = sorted(recent[:periods], key=lambda row: row["period"])
    return [
        ConsumptionPoint(
            period=row["period"],
            quantity=row["quantity"],
            meter_index=row["meter_index"],
            year_before=(by_period.get(month_add(row["period"], -12)) or {}).get("quantity"),
        )
        for row in shown
    ]


def plan_for_account(*, account: ServiceAccount, offered: list[Plan]) -> Plan:
    """The account's own plan: among `offered`, or fetched when it is retired."""
    current = next((p for p in offered if p.pk == account.plan_id), None)
    return current or Plan.objects.prefetch_related("tiers").get(pk=account.plan_id)


def plans_for_kind(*, kind: str) -> QuerySet[Plan]:
    return Plan.objects.filter(kind=kind, is_active=True).prefetch_related("tiers").order_by("monthly_fee", "code")
