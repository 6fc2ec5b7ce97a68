"""Path converters for account and bill numbers.

A URL whose number cannot be one is a 404 before any view runs: no lookup
with a NUL byte, a letter or a megabyte of digits ever reaches PostgreSQL.
"""

from __future__ import annotations

# Ten digits (billing.numbers); a bill adds its period: 0123456789-202611.
ACCOUNT_NUMBER_PATTERN = "[0-9]{10}"
BILL_NUMBER_PATTERN = "[0-9]{10}-[0-9]{6}"


class AccountNumberConverter:
    regex = ACCOUNT_NUMBER_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class BillNumberConverter(AccountNumberConverter):
    regex = BILL_NUMBER_PATTERN
