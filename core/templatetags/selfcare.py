from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import format_date
from django import template
from django.conf import settings
from django.utils import timezone

from core.money import babel_locale, format_meter, format_money, format_quantity, format_unit_price

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str | None = None) -> str:
    """`{{ bill.amount_due|money:bill.currency }}`, in the page's language."""
    return format_money(amount, currency or settings.SELFCARE_CURRENCY)


@register.filter
def unit_price(price: Decimal | None, currency: str | None = None) -> str:
    """`{{ tier.unit_price|unit_price }}`: 0,062 DT, keeping a tariff's extra digits."""
    return format_unit_price(price, currency or settings.SELFCARE_CURRENCY)


@register.filter
def quantity(value: Decimal | None) -> str:
    """A quantity in the page's number format without trailing zeros: 250, 1,5."""
    return format_quantity(value)


# Dates through CLDR, like amounts, so month names follow the operator's
# country (Tunisia says أوت where the Levant says آب) consistently on every page.


@lru_cache(maxsize=8192)
def format_date_cached(value: dt.date, pattern: str, locale: Locale) -> str:
    # A page shows the same months and days many times (a chart, a table), and
    # there are only so many of them: formatting each once per locale is enough.
    return format_date(value, pattern, locale=locale)


@register.filter
def month(value: dt.date | None) -> str:
    """`novembre 2026`, `نوفمبر 2026`."""
    return format_date_cached(value, "LLLL y", babel_locale()) if value else ""


@register.filter
def longdate(value: dt.date | None) -> str:
    """`25 novembre 2026`; a timestamp is first put in operator time."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date()
    return format_date_cached(value, "d MMMM y", babel_locale()) if value else ""


@register.filter
def meter(value: Decimal | None) -> str:
    """A meter index as printed on the meter: no thousands separator."""
    return format_meter(value)
