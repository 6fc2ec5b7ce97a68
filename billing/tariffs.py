"""Pricing: turn a plan and a period's usage into bill lines. Pure functions.

Utilities bill progressive tranches (STEG, SOMELEC): each kWh or m³ is charged
at the price of the tranche it falls in. Telecom plans charge a monthly fee and
what goes beyond the allowances. Line amounts are quantized to the currency
once each; unit prices keep their own precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from core.money import quantize

from .models import BillLine, Plan, PlanTier, Unit


@dataclass(frozen=True)
class LineDraft:
    kind: str
    amount: Decimal
    quantity: Decimal | None = None
    unit: str = ""
    unit_price: Decimal | None = None
    tier: int | None = None


def tiered_lines(*, tiers: Iterable[PlanTier], usage: Decimal, unit: str, currency: str) -> list[LineDraft]:
    lines = []
    for tier in sorted(tiers, key=lambda t: t.position):
        upper = usage if tier.to_quantity is None else min(usage, tier.to_quantity)
        in_tier = upper - tier.from_quantity
        if in_tier <= 0:
            continue
        lines.append(
            LineDraft(
                kind=BillLine.Kind.CONSUMPTION,
                tier=tier.position,
                quantity=in_tier,
                unit=unit,
                unit_price=tier.unit_price,
                amount=quantize(in_tier * tier.unit_price, currency),
            )
        )
    return lines


def overage_lines(*, plan: Plan, usage: Mapping[str, Decimal], currency: str) -> list[LineDraft]:
    allowances = (
        (Unit.MINUTES, plan.included_minutes, plan.price_per_minute),
        (Unit.SMS, plan.included_sms, plan.price_per_sms),
        (Unit.GB, plan.included_data_gb, plan.price_per_gb),
    )
    lines = []
    for unit, included, price in allowances:
        used = usage.get(unit, Decimal(0))
        extra = used - Decimal(included or 0)
        if extra > 0 and price:
            lines.append(
                LineDraft(
                    kind=BillLine.Kind.OVERAGE,
                    quantity=extra,
                    unit=unit,
                    unit_price=price,
                    amount=quantize(extra * price, currency),
                )
            )
    return lines


def price_period(*, plan: Plan, usage: Mapping[str, Decimal], currency: str) -> list[LineDraft]:
    """All lines of one month on `plan`, monthly fee first.

    `plan.tiers` should be prefetched: this is called once per bill in a run.
    """
    lines = [LineDraft(kind=BillLine.Kind.FIXED_FEE, amount=quantize(plan.monthly_fee, currency))]
    if plan.is_utility:
        lines += tiered_lines(
            tiers=plan.tiers.all(), usage=usage.get(plan.unit, Decimal(0)), unit=plan.unit, currency=currency
        )
    else:
        lines += overage_lines(plan=plan, usage=usage, currency=currency)
    return lines


def tax_on(*, amount_lines: Decimal, rate: Decimal, currency: str) -> Decimal:
    return quantize(amount_lines * rate, currency)
