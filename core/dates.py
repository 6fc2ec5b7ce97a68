"""Calendar arithmetic and date formatting shared by billing and its pages."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from babel import Locale
from babel.dates import format_date


def month_add(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after (or before, if negative) `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@lru_cache(maxsize=8192)
def format_cldr_date(value: dt.date, pattern: str, locale: Locale) -> str:
    """A date through CLDR, like amounts, so month names follow the operator's
    country (Tunisia says أوت where the Levant says آب) on every page.

    Cached: a page shows the same months and days many times (a chart, a table),
    and there are only so many of them per locale.
    """
    return format_date(value, pattern, locale=locale)
