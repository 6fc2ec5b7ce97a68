from __future__ import annotations

from decimal import Decimal

from django import template
from django.conf import settings

from core.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str | None = None) -> str:
    """`{{ bill.amount_due|money:bill.currency }}`, in the page's language."""
    return format_money(amount, currency or settings.SELFCARE_CURRENCY)


@register.filter
def quantity(value: Decimal | None) -> str:
    """A quantity without trailing zeros: 250.000 -> 250, 1.500 -> 1.5."""
    if value is None:
        return ""
    normalized = value.normalize()
    return f"{normalized:f}" if normalized == normalized.to_integral() else str(normalized)
