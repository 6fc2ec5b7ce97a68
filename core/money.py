"""Money helpers: the one place where amounts are quantized and formatted.

Amounts are `Decimal`s beside a currency code. Every stored amount is quantized
to its currency's ISO 4217 minor-unit exponent (TND 3, MAD 2, XOF 0); unit prices
may carry more decimals, and a total is quantized once, at the end.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple

from babel import Locale, UnknownLocaleError
from babel.numbers import NumberPattern, parse_pattern
from django.conf import settings
from django.utils import translation

# ISO 4217 minor units for the currencies of the operators we serve. Kept
# explicit rather than taken from CLDR, whose "cash" digits differ for some.
ISO_4217_EXPONENTS: dict[str, int] = {
    "AED": 2, "BHD": 3, "DZD": 2, "EGP": 2, "EUR": 2, "GNF": 0, "IQD": 3,
    "JOD": 3, "KMF": 0, "KWD": 3, "LYD": 3, "MAD": 2, "MRU": 2, "OMR": 3,
    "QAR": 2, "SAR": 2, "TND": 3, "USD": 2, "XAF": 0, "XOF": 0,
}  # fmt: skip


class UnknownCurrency(ValueError):
    pass


class Money(NamedTuple):
    """An amount with its currency, for code that formats it later in some language."""

    amount: Decimal
    currency: str


def currency_exponent(currency: str) -> int:
    try:
        return ISO_4217_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(f"Unsupported currency {currency!r}") from None


def minor_unit(currency: str) -> Decimal:
    """The smallest amount in `currency`: 0.001 TND, 0.01 MAD, 1 XOF."""
    return Decimal(1).scaleb(-currency_exponent(currency))


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round half up to the currency's minor unit. Floats are refused."""
    if isinstance(amount, float):
        raise TypeError("Money is never a float; pass a Decimal or a string.")
    return Decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal | int], currency: str) -> list[Decimal]:
    """Split `total` in proportion to `weights` without creating or losing a minor unit.

    Largest-remainder method: every share is rounded down to the minor unit, then
    the units left over go one each to the shares with the largest remainders
    (earliest first on ties), so the shares always sum to exactly `total`.
    """
    total = quantize(total, currency)
    weights = [Decimal(w) for w in weights]
    if not weights:
        raise ValueError("allocate() needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights cannot be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights cannot all be zero")
    unit = minor_unit(currency)
    exact = [total * w / weight_sum for w in weights]
    shares = [e.quantize(unit, rounding=ROUND_DOWN) for e in exact]
    left_over = int((total - sum(shares)) / unit)
    step = unit if left_over >= 0 else -unit
    order = sorted(range(len(weights)), key=lambda i: (-(abs(exact[i] - shares[i])), i))
    for i in order[: abs(left_over)]:
        shares[i] += step
    return shares


@lru_cache(maxsize=16)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        # No CLDR data for this pair (en_TN): the bare language's conventions.
        return Locale.parse(name.split("_")[0])


def babel_locale(language: str | None = None) -> Locale:
    """The CLDR locale of a page language in the operator's country: ar -> ar_TN."""
    language = (language or translation.get_language() or settings.LANGUAGE_CODE)[:2]
    return _locale(f"{language}_{settings.SELFCARE_PHONE_REGION}")


@lru_cache(maxsize=64)
def _money_pattern(locale: Locale, min_digits: int, max_digits: int) -> NumberPattern:
    # The locale's own pattern (symbol placement, separators), with the fraction
    # digits forced to ISO 4217's: CLDR disagrees for a few (IQD).
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (min_digits, max_digits)
    return pattern


def format_money(amount: Decimal | None, currency: str, language: str | None = None) -> str:
    """`1 234,567 DT` in French, `‏1.234,567 د.ت.‏` in Arabic, per CLDR."""
    if amount is None:
        return ""
    exponent = currency_exponent(currency)
    locale = babel_locale(language)
    pattern = _money_pattern(locale, exponent, exponent)
    return pattern.apply(quantize(amount, currency), locale, currency=currency, currency_digits=False)


def format_unit_price(price: Decimal | None, currency: str, language: str | None = None) -> str:
    """A tariff (0,062 DT per kWh): at least the currency's digits, up to six, never rounded away."""
    if price is None:
        return ""
    locale = babel_locale(language)
    pattern = _money_pattern(locale, currency_exponent(currency), 6)
    return pattern.apply(price, locale, currency=currency, currency_digits=False, decimal_quantization=False)


# Parsed once: babel would parse a string format on every call.
_QUANTITY_PATTERN = parse_pattern("#,##0.###")


def format_quantity(value: Decimal | None, language: str | None = None) -> str:
    """A quantity in the page's number format, without trailing zeros (`1 250,5`)."""
    if value is None:
        return ""
    return _QUANTITY_PATTERN.apply(value.normalize(), babel_locale(language))
