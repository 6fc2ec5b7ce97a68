"""The paid SMS alert service's yearly fee, as a line of the bill that charges it.

Its own module so that the bill (services.bill_issue) and the plan-change preview
(plan_changes) add the same line without importing each other.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings

from core.money import quantize

from .models import BillLine, ServiceAccount
from .tariffs import LineDraft


def sms_alert_fee_lines(*, account: ServiceAccount, period: dt.date, currency: str | None = None) -> list[LineDraft]:
    """The fee lines bill generation adds for `period`: the yearly fee falls in
    the subscription's anniversary month, as long as it is running then."""
    currency = currency or settings.SELFCARE_CURRENCY
    period = period.replace(day=1)
    for subscription in account.sms_alert_subscriptions.all():
        start = subscription.started_on.replace(day=1)
        running = start <= period and (subscription.ended_on is None or subscription.ended_on >= period)
        if running and period.month == start.month:
            fee = quantize(Decimal(settings.SELFCARE_SMS_ALERT_YEARLY_FEE), currency)
            return [LineDraft(kind=BillLine.Kind.FEE, amount=fee, quantity=Decimal(1))]
    return []
