"""Account numbers: nine digits a clerk can read out, plus a Luhn check digit.

The Luhn digit catches every single mistyped digit and almost every swap of two
neighbouring digits, so a wrong number typed at the counter or into a bank's app
is refused instead of landing on somebody else's account.
"""

from __future__ import annotations

from stdnum import luhn
from stdnum.exceptions import ValidationError

ACCOUNT_NUMBER_BASE = 100_000_000  # nine digits, never a leading zero


class InvalidAccountNumber(ValueError):
    pass


def account_number_from_serial(serial: int) -> str:
    base = str(ACCOUNT_NUMBER_BASE + serial)
    if len(base) != 9:
        raise OverflowError("account number space exhausted")
    return base + luhn.calc_check_digit(base)


def account_number_clean(raw: str) -> str:
    """Strip spaces and dashes, then check the length and the check digit."""
    digits = "".join(ch for ch in (raw or "") if ch not in " -.\u00a0")
    if len(digits) != 10 or not digits.isdigit():
        raise InvalidAccountNumber("An account number has 10 digits.")
    try:
        luhn.validate(digits)
    except ValidationError:
        raise InvalidAccountNumber("This account number has a typing mistake.") from None
    return digits


def format_account_number(number: str) -> str:
    """Groups of 3-3-4, the rhythm in which it is read over the phone."""
    return f"{number[:3]} {number[3:6]} {number[6:]}" if len(number) == 10 else number
