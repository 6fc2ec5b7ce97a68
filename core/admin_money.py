"""Amounts in the back office as a clerk reads them: with their currency.

A money column is a bare Decimal to the admin ("73,255"): which currency, and how
many of its digits count, the clerk had to guess. A ModelAdmin lists its amount
fields in `money_fields` with where each one's currency is read, and every
changelist column, change page and read-only field shows them through
`core.money.format_money`: quantized to the currency's ISO 4217 exponent and
written in the page's language per CLDR (`73,255 DT`, `‏73,255 د.ت.‏`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from .money import format_money

# The operator's currency: for amounts whose row names none (an account's credit).
OPERATOR_CURRENCY = ""
SUFFIX = "_money"


def _currency_of(obj: Model, path: str) -> str:
    if path == OPERATOR_CURRENCY:
        return settings.SELFCARE_CURRENCY
    value: Any = obj
    for part in path.split("."):
        value = getattr(value, part)
    return value


def money_display(model: type[Model], name: str, currency: str) -> Callable[[Model], str]:
    """A read-only admin display of `model.name` with the currency at `currency`
    (a dotted attribute path from the row, or OPERATOR_CURRENCY)."""
    field = model._meta.get_field(name)

    @admin.display(description=field.verbose_name, ordering=name)
    def show(obj: Model) -> str:
        amount: Decimal | None = getattr(obj, name)
        return "-" if amount is None else format_money(amount, _currency_of(obj, currency))

    show.__name__ = name + SUFFIX
    return show


class MoneyFieldsAdmin:
    """Mix into a ModelAdmin: each field of `money_fields` ({field: currency path})
    is shown, wherever the admin would show it read-only, with its currency.
    Editable amounts (a plan's fee being typed in) stay inputs: list only
    fields that are read-only on the admin's pages."""

    money_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, model: type[Model], admin_site: admin.AdminSite) -> None:
        # Instance attributes, named `<field>_money`: the admin finds a column or a
        # read-only field by name on the ModelAdmin, its label and ordering included.
        for name, currency in self.money_fields.items():
            setattr(self, name + SUFFIX, money_display(model, name, currency))
        super().__init__(model, admin_site)  # type: ignore[call-arg]

    def _money(self, names: Sequence[Any]) -> list[Any]:
        # A fieldset's line may group several fields in a tuple.
        return [
            tuple(self._money(name)) if isinstance(name, (list, tuple))
            else name + SUFFIX if isinstance(name, str) and name in self.money_fields
            else name
            for name in names
        ]  # fmt: skip

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._money(super().get_list_display(request))  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return self._money(super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return self._money(super().get_fields(request, obj))  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        return [(title, {**options, "fields": self._money(options["fields"])}) for title, options in fieldsets]
