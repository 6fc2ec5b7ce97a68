from __future__ import annotations

import datetime as dt

from django import template

from billing.models import Bill

register = template.Library()


@register.filter
def overdue_on(bill: Bill, today: dt.date) -> bool:
    """`{% if bill|overdue_on:today %}`: the model's rule, not a copy of it in the template."""
    return bill.is_overdue(today)
