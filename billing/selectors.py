"""Reads for the subscriber pages. Every query is scoped to one subscriber, and
none of them grows with the length of an account's history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import translation

from accounts.models import Subscriber
from core.dates import month_add
from core.sql import as_date, as_decimal, as_time, fetch_all, in_list

from .models import PRIMARY_UNIT, Appointment, Bill, FieldOrder, Plan, PrintRequest, ServiceAccount, ServiceKind, Unit
from .numbers import format_account_number


def accounts_of(*, subscriber: Subscriber) -> QuerySet[ServiceAccount]:
    return ServiceAccount.objects.filter(subscriber=subscriber)


def bills_of(*, subscriber: Subscriber) -> QuerySet[Bill]:
    return Bill.objects.filter(account__subscriber=subscriber)


# --- The subscriber pages' hot reads, in plain SQL (core/sql.py says why) ----

_OPEN = f"b.status IN {in_list(Bill.OPEN_STATUSES)} AND b.amount_due > 0"  # Bill.open_q, in SQL
_CANCELLED = Bill.Status.CANCELLED.value


@dataclass(frozen=True)
class AccountSummary:
    """One account on the dashboard: what is due, when, and its last bill."""

    number: str
    kind: str
    status: str
    service_address: str
    plan_names: dict[str, str]
    amount_due: Decimal
    next_due_date: dt.date | None  # the next bill to come (due today or later)
    overdue_due_date: dt.date | None  # the oldest overdue bill's, shown apart
    overdue_count: int
    last_bill_number: str | None
    last_bill_period: dt.date | None
    last_bill_total: Decimal | None
    last_bill_currency: str | None

    @property
    def display_number(self) -> str:
        return format_account_number(self.number)

    @property
    def plan_name(self) -> str:
        language = (translation.get_language() or "fr")[:2]
        return self.plan_names.get(language) or self.plan_names["fr"]

    def get_kind_display(self) -> str:
        return ServiceKind(self.kind).label

    def get_status_display(self) -> str:
        return ServiceAccount.Status(self.status).label


# What is due comes from the open bills only (a partial index, bill_open_idx), and
# the last bill from the (account, period) unique index read backwards: the cost
# does not grow with the length of the history.
_DASHBOARD_SQL = f"""
SELECT a.number, a.kind, a.status, a.service_address, p.name_ar, p.name_fr, p.name_en,
       COALESCE(agg.amount_due, 0), agg.next_due_date, COALESCE(agg.overdue_count, 0),
       lb.number, lb.period, lb.amount_total, lb.currency, agg.overdue_due_date
FROM billing_serviceaccount a
JOIN billing_plan p ON p.id = a.plan_id
LEFT JOIN (
    SELECT b.account_id, SUM(b.amount_due) AS amount_due,
           -- The next date to come, and the overdue one apart: an overdue bill's
           -- past date is not "next".
           MIN(b.due_date) FILTER (WHERE b.due_date >= %s) AS next_due_date,
           MIN(b.due_date) FILTER (WHERE b.due_date < %s) AS overdue_due_date,
           SUM(CASE WHEN b.due_date < %s THEN 1 ELSE 0 END) AS overdue_count
    FROM billing_bill b
    WHERE b.account_id IN (SELECT id FROM billing_serviceaccount WHERE subscriber_id = %s) AND {_OPEN}
    GROUP BY b.account_id
) agg ON agg.account_id = a.id
LEFT JOIN billing_bill lb ON lb.id = (
    SELECT l.id FROM billing_bill l
    WHERE l.account_id = a.id AND l.status <> '{_CANCELLED}'
    ORDER BY l.period DESC LIMIT 1
)
WHERE a.subscriber_id = %s
ORDER BY a.kind, a.number
"""


def account_list_for_dashboard(*, subscriber_id: int, today: dt.date) -> list[AccountSummary]:
    """Each account with what is due, the next due date, its overdue count and
    last bill: one query, whatever the length of the history."""
    return [
        AccountSummary(
            number=row[0],
            kind=row[1],
            status=row[2],
            service_address=row[3],
            plan_names={"ar": row[4], "fr": row[5], "en": row[6]},
            amount_due=as_decimal(row[7]),
            next_due_date=as_date(row[8]),
            overdue_due_date=as_date(row[14]),
            overdue_count=int(row[9]),
            last_bill_number=row[10],
            last_bill_period=as_date(row[11]),
            last_bill_total=as_decimal(row[12]),
            last_bill_currency=row[13],
        )
        for row in fetch_all(_DASHBOARD_SQL, [today, today, today, subscriber_id, subscriber_id])
    ]


@dataclass(frozen=True)
class BillRow:
    """One line of the bills list."""

    number: str
    period: dt.date
    due_date: dt.date
    amount_total: Decimal
    amount_due: Decimal
    currency: str
    status: str
    account_number: str
    account_kind: str

    @property
    def display_account_number(self) -> str:
        return format_account_number(self.account_number)

    def get_status_display(self) -> str:
        return Bill.Status(self.status).label

    def get_account_kind_display(self) -> str:
        return ServiceKind(self.account_kind).label

    def is_overdue(self, today: dt.date) -> bool:
        return Bill.is_overdue_given(
            status=self.status, amount_due=self.amount_due, due_date=self.due_date, today=today
        )


@dataclass(frozen=True)
class BillPage:
    """A page of the bills list, with what the pager shows."""

    rows: list[BillRow]
    number: int
    num_pages: int

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> BillRow:
        return self.rows[index]

    def has_previous(self) -> bool:
        return self.number > 1

    def has_next(self) -> bool:
        return self.number < self.num_pages

    def has_other_pages(self) -> bool:
        return self.num_pages > 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def next_page_number(self) -> int:
        return self.number + 1


# Each bound read from the ends of the (account, period) unique index.
_ACCOUNT_NUMBERS_SQL = """
SELECT a.number,
       (SELECT MIN(b.period) FROM billing_bill b WHERE b.account_id = a.id),
       (SELECT MAX(b.period) FROM billing_bill b WHERE b.account_id = a.id)
FROM billing_serviceaccount a
WHERE a.subscriber_id = %s
ORDER BY a.number
"""


def bill_filter_choices(*, subscriber_id: int) -> tuple[list[str], list[int]]:
    """The subscriber's account numbers and the years their bills span, newest
    first, for the bills page's filters (one query)."""
    rows = fetch_all(_ACCOUNT_NUMBERS_SQL, [subscriber_id])
    periods = [as_date(p) for row in rows for p in row[1:] if p is not None]
    years = list(range(max(periods).year, min(periods).year - 1, -1)) if periods else []
    return [row[0] for row in rows], years


def bill_page(
    *,
    subscriber_id: int,
    today: dt.date,
    account_number: str | None = None,
    status: str | None = None,
    year: int | None = None,
    page: str | int | None = None,
    per_page: int = 12,
) -> BillPage:
    """A page of the subscriber's bills, newest first, filtered as the bills page asks.

    "overdue" means overdue today (open and past due), not only the bills the
    hourly sweep has already flagged. A page number that is not one gives the
    first page, one past the end the last (as Django's Paginator.get_page).
    """
    where, params = ["a.subscriber_id = %s"], [subscriber_id]
    if account_number:
        where.append("a.number = %s")
        params.append(account_number)
    if status == Bill.Status.OVERDUE:
        where.append(f"{_OPEN} AND b.due_date < %s")
        params.append(today)
    elif status:
        where.append("b.status = %s")
        params.append(status)
    if year:
        where.append("b.period >= %s AND b.period < %s")
        params += [dt.date(year, 1, 1), dt.date(year + 1, 1, 1)]
    body = f"FROM billing_bill b JOIN billing_serviceaccount a ON a.id = b.account_id WHERE {' AND '.join(where)}"
    try:
        # Bounded: a page number from the address bar must not overflow OFFSET.
        number = min(max(int(page or 1), 1), 1_000_000)
    except (TypeError, ValueError):
        number = 1
    rows = _bill_rows(body, params, number, per_page)
    if not rows and number > 1:  # past the end: the last page, as a pager would
        (count,) = fetch_all(f"SELECT COUNT(*) {body}", params)[0]
        number = max(-(-count // per_page), 1)
        rows = _bill_rows(body, params, number, per_page)
    total = rows[0][-1] if rows else 0
    return BillPage(
        rows=[
            BillRow(
                number=r[0],
                period=as_date(r[1]),
                due_date=as_date(r[2]),
                amount_total=as_decimal(r[3]),
                amount_due=as_decimal(r[4]),
                currency=r[5],
                status=r[6],
                account_number=r[7],
                account_kind=r[8],
            )
            for r in rows
        ],
        number=number,
        num_pages=max(-(-total // per_page), 1),
    )


def _bill_rows(body: str, params: list, number: int, per_page: int) -> list[tuple]:
    sql = (
        "SELECT b.number, b.period, b.due_date, b.amount_total, b.amount_due, b.currency, b.status, a.number, a.kind, "
        f"COUNT(*) OVER () {body} ORDER BY b.period DESC, a.number LIMIT %s OFFSET %s"
    )
    return fetch_all(sql, [*params, per_page, (number - 1) * per_page])


def bill_get(*, subscriber: Subscriber, number: str) -> Bill:
    """Raises Bill.DoesNotExist for a bill that is not the subscriber's."""
    return bills_of(subscriber=subscriber).select_related("account", "account__plan").get(number=number)


def bill_paper_copy_latest(*, bill: Bill) -> PrintRequest | None:
    """The bill's last paper-copy request (to print, or printed and waiting at the agency)."""
    return PrintRequest.objects.filter(bill=bill).select_related("agency").order_by("-requested_at").first()


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


@dataclass(frozen=True)
class ConsumptionHistory:
    account_number: str
    kind: str
    points: list[ConsumptionPoint]  # oldest first

    @property
    def display_number(self) -> str:
        return format_account_number(self.account_number)

    @property
    def unit_label(self) -> str:
        return Unit(PRIMARY_UNIT[self.kind]).label

    def get_kind_display(self) -> str:
        return ServiceKind(self.kind).label


# The account (scoped to its subscriber) and its main unit's months in one query.
_PRIMARY_UNIT_SQL = "CASE a.kind " + " ".join(f"WHEN '{k}' THEN '{u}'" for k, u in PRIMARY_UNIT.items()) + " END"
_CONSUMPTION_SQL = f"""
SELECT a.kind, c.period, c.quantity, c.meter_index
FROM billing_serviceaccount a
LEFT JOIN billing_consumption c ON c.account_id = a.id AND c.unit = {_PRIMARY_UNIT_SQL}
WHERE a.subscriber_id = %s AND a.number = %s
ORDER BY c.period DESC
LIMIT %s
"""


def consumption_history(*, subscriber_id: int, account_number: str, periods: int = 24) -> ConsumptionHistory | None:
    """The last `periods` months of the account's main unit, oldest first, each
    with the same month a year before; None when the account is not the
    subscriber's. One query of at most periods + 12 rows."""
    rows = fetch_all(_CONSUMPTION_SQL, [subscriber_id, account_number, periods + 12])
    if not rows:
        return None
    recent = [(as_date(r[1]), as_decimal(r[2]), as_decimal(r[3])) for r in rows if r[1] is not None]
    by_period = {period: quantity for period, quantity, _ in recent}
    return ConsumptionHistory(
        account_number=account_number,
        kind=rows[0][0],
        points=[
            ConsumptionPoint(
                period=period,
                quantity=quantity,
                meter_index=meter_index,
                year_before=by_period.get(month_add(period, -12)),
            )
            for period, quantity, meter_index in reversed(recent[:periods])
        ],
    )


def plan_for_account(*, account: ServiceAccount, offered: list[Plan]) -> Plan:
    """The account's own plan: among `offered`, or fetched when it is retired."""
    current = next((p for p in offered if p.pk == account.plan_id), None)
    return current or Plan.objects.prefetch_related("tiers").get(pk=account.plan_id)


def plans_for_kind(*, kind: str) -> QuerySet[Plan]:
    return Plan.objects.filter(kind=kind, is_active=True).prefetch_related("tiers").order_by("monthly_fee", "code")


@dataclass(frozen=True)
class UpcomingVisit:
    """A visit as the dashboard shows it."""

    pk: int
    kind: str
    date: dt.date
    window_start: dt.time
    window_end: dt.time
    moved_once: bool
    move_preferred_date: dt.date | None
    account_number: str

    def get_kind_display(self) -> str:
        return Appointment.Kind(self.kind).label

    @property
    def display_account_number(self) -> str:
        return format_account_number(self.account_number)


# Plain SQL like the dashboard's accounts read: the ORM's
# join and model instances cost more CPU than the partial index's answer.
_UPCOMING_SQL = f"""
SELECT v.id, v.kind, v.date, v.window_start, v.window_end, v.moved_once, v.move_preferred_date, a.number
FROM billing_appointment v
JOIN billing_serviceaccount a ON a.id = v.account_id
WHERE a.subscriber_id = %s AND v.date >= %s AND v.status IN {in_list(Appointment.UPCOMING_STATUSES)}
ORDER BY v.date, v.window_start
LIMIT 5
"""


def appointments_upcoming(*, subscriber_id: int, today: dt.date) -> list[UpcomingVisit]:
    """What the dashboard shows: the subscriber's visits from today on."""
    return [
        UpcomingVisit(
            pk=row[0],
            kind=row[1],
            date=as_date(row[2]),
            window_start=as_time(row[3]),
            window_end=as_time(row[4]),
            moved_once=bool(row[5]),
            move_preferred_date=as_date(row[6]),
            account_number=row[7],
        )
        for row in fetch_all(_UPCOMING_SQL, [subscriber_id, today])
    ]


# Every payment asks this under its account lock (dunning_account_settle): plain
# SQL, as the ORM's EXISTS cost a payment more CPU than the index's answer.
_DISCONNECTION_IN_FORCE_SQL = f"""
SELECT 1 FROM billing_fieldorder o
WHERE o.account_id = %s AND o.kind = '{FieldOrder.Kind.DISCONNECTION.value}'
  AND o.status IN {in_list([*FieldOrder.OPEN_STATUSES, FieldOrder.Status.EXECUTED])}
  AND NOT EXISTS (SELECT 1 FROM billing_fieldorder r WHERE r.reconnects_id = o.id)
LIMIT 1
"""


def disconnection_in_force(*, account_id: int) -> bool:
    """A disconnection order waiting for the field team, or carried out and not
    yet followed by a reconnection order."""
    return bool(fetch_all(_DISCONNECTION_IN_FORCE_SQL, [account_id]))


@dataclass(frozen=True)
class OverdueBills:
    """What an account owes past due today: the bills' numbers, oldest first, and
    their total per currency (an account bills in one currency; the dict says so
    rather than adding two)."""

    numbers: list[str]
    totals: dict[str, Decimal]


def overdue_bills_by_account(*, account_ids: list[int], today: dt.date) -> dict[int, OverdueBills]:
    """The overdue bills of several accounts in one query: a page of field orders
    needs them for each order without a query per order."""
    found: dict[int, OverdueBills] = {}
    rows = (
        Bill.objects.filter(Bill.overdue_q(today), account_id__in=account_ids)
        .order_by("account_id", "due_date", "number")
        .values_list("account_id", "number", "currency", "amount_due")
    )
    for account_id, number, currency, amount_due in rows:
        entry = found.setdefault(account_id, OverdueBills(numbers=[], totals={}))
        entry.numbers.append(number)
        entry.totals[currency] = entry.totals.get(currency, Decimal(0)) + amount_due
    return found
