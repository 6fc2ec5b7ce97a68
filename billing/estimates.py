"""Estimated bills, corrected once the meter is read.

A meter not read in a month is billed on an estimate (the average of its last
readings, `runs.usage_for_billing`), marked estimated. When a reading comes in
again, its meter index tells what was really used since the last real reading;
the bill of that month then corrects the estimates, as utilities do: one line,
the real use of the estimated months priced on the plan, less what their bills
charged (`tariffs.estimate_correction_line`), a debit or a credit.

Which bills are corrected, for the bill of month P of a meter read in P:

- the estimated bills since the meter's last bill on a real reading (before P);
  the bill on a real reading corrects all those before it, so none is
  corrected twice, and one after an unread stretch corrects the whole stretch;
- their months' real use = index at the end of P - index of the last reading
  before the first of them - the consumption of P itself (billed on P's own
  lines), spread over the months between those two readings;
- priced on the plan P is billed on.

Nothing is corrected, and the estimates stand, when a reading lacks its index
(telecom usage, a row typed without it) or the indexes run backwards (a meter
replaced or a typing error: the reading is corrected first, then billed).

The bill run does the same in SQL (runs._BILLS_SQL, the `fix` rows);
billing/tests/test_estimates.py holds both to the same answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Max, Min, Sum

from .models import PRIMARY_UNIT, UTILITY_KINDS, Bill, BillLine, Consumption, ServiceAccount
from .tariffs import LineDraft, PlanTerms, estimate_correction_line

ZERO = Decimal(0)


@dataclass(frozen=True)
class EstimateCorrection:
    """What a reading tells about the estimated months before it."""

    bill_ids: tuple[int, ...]  # the estimated bills it corrects
    months: int  # the months the real use is spread over
    real_quantity: Decimal
    billed_quantity: Decimal
    billed_amount: Decimal


def months_between(later: dt.date, earlier: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def estimate_correction_find(*, account: ServiceAccount, period: dt.date) -> EstimateCorrection | None:
    """The estimated bills the bill of `period` corrects, and what was really used
    in their months; None when there is nothing to correct (or no way to know)."""
    if account.kind not in UTILITY_KINDS:
        return None
    period = period.replace(day=1)
    unit = PRIMARY_UNIT[account.kind]
    read = (
        Consumption.objects.filter(account=account, period=period, unit=unit, meter_index__isnull=False)
        .values("quantity", "meter_index")
        .first()
    )
    if read is None:
        return None
    earlier = Bill.objects.filter(account=account, period__lt=period).exclude(status=Bill.Status.CANCELLED)
    last_real = earlier.filter(is_estimated=False).aggregate(last=Max("period"))["last"]
    estimated = earlier.filter(is_estimated=True)
    if last_real is not None:
        estimated = estimated.filter(period__gt=last_real)
    bill_ids = tuple(estimated.order_by("period").values_list("pk", flat=True))
    if not bill_ids:
        return None
    first = Bill.objects.filter(pk__in=bill_ids).aggregate(first=Min("period"))["first"]
    before = (
        Consumption.objects.filter(account=account, unit=unit, period__lt=first)
        .order_by("-period")
        .values("period", "meter_index")
        .first()
    )
    if before is None or before["meter_index"] is None:
        return None
    real = read["meter_index"] - before["meter_index"] - read["quantity"]
    if real < 0:
        return None
    billed = BillLine.objects.filter(bill_id__in=bill_ids, kind=BillLine.Kind.CONSUMPTION).aggregate(
        quantity=Sum("quantity", default=ZERO), amount=Sum("amount", default=ZERO)
    )
    return EstimateCorrection(
        bill_ids=bill_ids,
        months=months_between(period, before["period"]) - 1,
        real_quantity=real,
        billed_quantity=billed["quantity"],
        billed_amount=billed["amount"],
    )


def estimate_correction_lines(
    *, account: ServiceAccount, period: dt.date, plan: PlanTerms, currency: str
) -> list[LineDraft]:
    """What the bill of `period` on `plan` adds to correct earlier estimates."""
    found = estimate_correction_find(account=account, period=period)
    if found is None:
        return []
    line = estimate_correction_line(
        plan=plan, real_quantity=found.real_quantity, months=found.months, billed_quantity=found.billed_quantity,
        billed_amount=found.billed_amount, currency=currency,
    )  # fmt: skip
    return [] if line is None else [line]
