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
from babel.numbers import (
    NumberPattern,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)
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


def to_minor_units(amount: Decimal, currency: str) -> int:
    """An amount as a whole number of minor units (12.500 TND -> 12500 millimes), as
    gateways that count in millimes or cents want it. Exact: an amount finer than
    the minor unit, or not finite, raises ValueError rather than being rounded."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"Not a finite Decimal amount: {amount!r}")
    units = amount.scaleb(currency_exponent(currency))
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} has.")
    return int(units)


def from_minor_units(units: int, currency: str) -> Decimal:
    """A whole number of minor units as an amount (12500 millimes -> 12.500 TND). Exact."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise ValueError(f"Not a whole number of minor units: {units!r}")
    return quantize(Decimal(units).scaleb(-currency_exponent(currency)), currency)


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


class _FastFormat:
    """A CLDR number pattern applied without babel's per-call locale lookups.

    `NumberPattern.apply` looks up the locale's symbols (and the currency's) on
    every call, which made number formatting the largest cost of a page listing
    dozens of amounts. This does the same steps as babel's `_quantize_value`,
    `_format_int` and `_format_frac` with the symbols looked up once, for the
    plain patterns used here; anything else (a negative number) goes to babel.
    tests/test_money.py checks it against babel on random numbers.
    """

    def __init__(self, pattern: NumberPattern, locale: Locale, currency: str | None) -> None:
        self.pattern, self.locale, self.currency = pattern, locale, currency
        self.fast = not pattern.exp_prec and "@" not in pattern.pattern and not pattern.scale
        self.decimal = get_decimal_symbol(locale)
        self.group = get_group_symbol(locale)
        self.quantum = Decimal(1).scaleb(-pattern.frac_prec[1])
        # (positive, negative) prefixes and suffixes, the currency symbol put in.
        affixes = [pattern.prefix[0], pattern.suffix[0], pattern.prefix[1], pattern.suffix[1]]
        if currency is not None:
            symbol = get_currency_symbol(currency, locale)
            affixes = [a.replace("¤", symbol) for a in affixes]
        self.fast = self.fast and not any("'" in a or "¤" in a for a in affixes)
        self.affixes = ((affixes[0], affixes[1]), (affixes[2], affixes[3]))

    def __call__(self, value: Decimal) -> str:
        if not self.fast or not value.is_finite():
            return self.pattern.apply(value, self.locale, currency=self.currency, currency_digits=False)
        prefix, suffix = self.affixes[int(value.is_signed())]
        whole, _, frac = f"{abs(value).normalize().quantize(self.quantum):f}".partition(".")
        return prefix + self._int(whole) + self._frac(frac or "0") + suffix

    def _int(self, value: str) -> str:
        low = self.pattern.int_prec[0]
        value = value.rjust(low, "0")
        size, grouped = self.pattern.grouping[0], ""
        while len(value) > size:
            grouped = self.group + value[-size:] + grouped
            value = value[:-size]
            size = self.pattern.grouping[1]
        return value + grouped

    def _frac(self, value: str) -> str:
        low, high = self.pattern.frac_prec
        value = value.ljust(low, "0")
        if high == 0 or (low == 0 and int(value) == 0):
            return ""
        while len(value) > low and value[-1] == "0":
            value = value[:-1]
        return self.decimal + value


@lru_cache(maxsize=256)
def _money_format(locale: Locale, currency: str) -> _FastFormat:
    exponent = currency_exponent(currency)
    return _FastFormat(_money_pattern(locale, exponent, exponent), locale, currency)


def format_money(
    amount: Decimal | None, currency: str, language: str | None = None, *, locale: Locale | None = None
) -> str:
    """`1 234,567 DT` in French, `‏1.234,567 د.ت.‏` in Arabic, per CLDR. A caller
    formatting many amounts passes the `locale` it looked up once."""
    if amount is None:
        return ""
    return _money_format(locale or babel_locale(language), currency)(quantize(amount, currency))


def format_unit_price(
    price: Decimal | None, currency: str, language: str | None = None, *, locale: Locale | None = None
) -> str:
    """A tariff (0,062 DT per kWh): at least the currency's digits, up to six, never rounded away."""
    if price is None:
        return ""
    locale = locale or babel_locale(language)
    pattern = _money_pattern(locale, currency_exponent(currency), 6)
    return pattern.apply(price, locale, currency=currency, currency_digits=False, decimal_quantization=False)


# Parsed once: babel would parse a string format on every call.
_QUANTITY_PATTERN = parse_pattern("#,##0.###")


@lru_cache(maxsize=64)
def _quantity_format(locale: Locale) -> _FastFormat:
    return _FastFormat(_QUANTITY_PATTERN, locale, None)


def format_quantity(value: Decimal | None, language: str | None = None, *, locale: Locale | None = None) -> str:
    """A quantity in the page's number format, without trailing zeros (`1 250,5`).
    A caller formatting many numbers passes the `locale` it looked up once."""
    if value is None:
        return ""
    return _quantity_format(locale or babel_locale(language))(value.normalize())


@lru_cache(maxsize=64)
def _fixed_quantity_format(locale: Locale, places: int) -> _FastFormat:
    return _FastFormat(parse_pattern("#,##0." + "0" * places if places else "#,##0"), locale, None)


def format_quantity_fixed(value: Decimal | None, places: int, *, locale: Locale | None = None) -> str:
    """A quantity with exactly `places` decimals (`8,85` and `10,61` side by side),
    for a column of data volumes that would otherwise show two and three digits."""
    if value is None:
        return ""
    exponent = Decimal(1).scaleb(-places)
    return _fixed_quantity_format(locale or babel_locale(), places)(value.quantize(exponent, rounding=ROUND_HALF_UP))


# A meter index as printed on the meter: no thousands separator.
_METER_PATTERN = parse_pattern("0.###")


@lru_cache(maxsize=64)
def _meter_format(locale: Locale) -> _FastFormat:
    return _FastFormat(_METER_PATTERN, locale, None)


def format_meter(value: Decimal | None, *, locale: Locale | None = None) -> str:
    if value is None:
        return ""
    return _meter_format(locale or babel_locale())(value.normalize())
