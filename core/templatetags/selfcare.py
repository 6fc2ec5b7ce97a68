from __future__ import annotations

from decimal import Decimal

from django import template
from django.conf import settings

from core.money import format_money, format_quantity, format_unit_price

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
