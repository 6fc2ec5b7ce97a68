"""Pricing: turn a plan and a period's usage into a bill. Pure functions.

Utilities bill progressive tranches (STEG, SOMELEC): each kWh or m³ is charged
at the price of the tranche it falls in, then the plan's fixed levies (a
municipal levy, the TV fee). Telecom plans charge a monthly fee and what goes
beyond the allowances. VAT is the plan's rate (or the operator's) on the
taxable lines. Each line amount is quantized to the currency once; unit prices
keep their own precision.

`bill_compute` is the one definition of a bill's amounts. It reads nothing
from the database: the plan comes in as `PlanTerms` (`plan_terms` builds them
from a Plan with its tiers and levies prefetched), so a run can price a million
bills from a handful of plans. The bill run's SQL (billing/runs.py) computes
the same amounts inside PostgreSQL; billing/tests/test_bill_runs.py holds both
to the same answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.money import quantize

from .models import PRIMARY_UNIT, UTILITY_KINDS, BillLine, Plan, PlanTier, Unit

ZERO = Decimal(0)


@dataclass(frozen=True)
class LineDraft:
    kind: str
    amount: Decimal
    quantity: Decimal | None = None
    unit: str = ""
    unit_price: Decimal | None = None
    tier: int | None = None
    # Levies may be outside VAT; everything else is taxed.
    taxable: bool = True
    levy_id: int | None = None


@dataclass(frozen=True)
class TierTerms:
    position: int
    from_quantity: Decimal
    to_quantity: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True)
class LevyTerms:
    position: int
    amount: Decimal
    taxable: bool
    id: int | None = None


@dataclass(frozen=True)
class PlanTerms:
    """What pricing needs of a plan, as plain values."""

    kind: str
    monthly_fee: Decimal
    vat_rate: Decimal
    tiers: tuple[TierTerms, ...] = ()
    levies: tuple[LevyTerms, ...] = ()
    included_minutes: int | None = None
    included_sms: int | None = None
    included_data_gb: Decimal | None = None
    price_per_minute: Decimal | None = None
    price_per_sms: Decimal | None = None
    price_per_gb: Decimal | None = None

    @property
    def is_utility(self) -> bool:
        return self.kind in UTILITY_KINDS

    @property
    def unit(self) -> str:
        return PRIMARY_UNIT[self.kind]


@dataclass(frozen=True)
class BillDraft:
    period: dt.date
    currency: str
    lines: tuple[LineDraft, ...]
    amount_lines: Decimal
    amount_tax: Decimal
    amount_total: Decimal
    credit_used: Decimal
    amount_due: Decimal
    # What the bill's credits left over (its last line): the account's credit grows by it.
    credit_carried: Decimal = ZERO


def default_vat_rate() -> Decimal:
    return Decimal(settings.SELFCARE_VAT_RATE)


def plan_terms(plan: Plan, *, vat_rate: Decimal | None = None) -> PlanTerms:
    """The pricing terms of `plan`; its `tiers` and `levies` should be prefetched.
    Its VAT rate, else `vat_rate`, else the operator's (SELFCARE_VAT_RATE)."""
    rate = plan.vat_rate if plan.vat_rate is not None else (vat_rate if vat_rate is not None else default_vat_rate())
    return PlanTerms(
        kind=plan.kind,
        monthly_fee=plan.monthly_fee,
        vat_rate=rate,
        tiers=tuple(
            TierTerms(position=t.position, from_quantity=t.from_quantity, to_quantity=t.to_quantity,
                      unit_price=t.unit_price)
            for t in sorted(plan.tiers.all(), key=lambda t: t.position)
        ),
        levies=tuple(
            LevyTerms(position=levy.position, amount=levy.amount, taxable=levy.taxable, id=levy.pk)
            for levy in sorted(plan.levies.all(), key=lambda levy: levy.position)
        ),
        included_minutes=plan.included_minutes,
        included_sms=plan.included_sms,
        included_data_gb=plan.included_data_gb,
        price_per_minute=plan.price_per_minute,
        price_per_sms=plan.price_per_sms,
        price_per_gb=plan.price_per_gb,
    )  # fmt: skip


def tiered_lines(*, tiers: Iterable[TierTerms | PlanTier], usage: Decimal, unit: str, currency: str) -> list[LineDraft]:
    """One line per tranche the usage reaches: the part of the usage between its
    bounds (`from` excluded, `to` included), at its price."""
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


def overage_lines(*, plan: PlanTerms | Plan, usage: Mapping[str, Decimal], currency: str) -> list[LineDraft]:
    """Minutes, SMS and data beyond the allowances (in that order), at their prices."""
    allowances = (
        (Unit.MINUTES, plan.included_minutes, plan.price_per_minute),
        (Unit.SMS, plan.included_sms, plan.price_per_sms),
        (Unit.GB, plan.included_data_gb, plan.price_per_gb),
    )
    lines = []
    for unit, included, price in allowances:
        used = usage.get(unit, ZERO)
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


def levy_lines(*, levies: Iterable[LevyTerms], currency: str) -> list[LineDraft]:
    return [
        LineDraft(
            kind=BillLine.Kind.LEVY, amount=quantize(levy.amount, currency), taxable=levy.taxable, levy_id=levy.id
        )
        for levy in sorted(levies, key=lambda levy: levy.position)
    ]


def usage_lines(*, plan: PlanTerms, usage: Mapping[str, Decimal], currency: str) -> list[LineDraft]:
    """The monthly fee, then the tranches or what goes beyond the allowances."""
    lines = [LineDraft(kind=BillLine.Kind.FIXED_FEE, amount=quantize(plan.monthly_fee, currency))]
    if plan.is_utility:
        lines += tiered_lines(tiers=plan.tiers, usage=usage.get(plan.unit, ZERO), unit=plan.unit, currency=currency)
    else:
        lines += overage_lines(plan=plan, usage=usage, currency=currency)
    return lines


def bill_compute(
    *,
    plan: PlanTerms,
    usage: Mapping[str, Decimal],
    period: dt.date,
    credit: Decimal = ZERO,
    extra_lines: Sequence[LineDraft] = (),
    currency: str,
) -> BillDraft:
    """A month's bill: lines in bill order (fee, tranches or overage, extra lines
    such as the SMS alert fee, plan-change proration and the correction of
    estimated bills, levies), VAT on the taxable lines, then the account's
    credit used against the total (never more than either).

    Extra lines may be credits. When the credits outweigh the charges, the bill
    comes to zero with a last, untaxed line carrying the rest to the account's
    credit (`credit_carried`): a bill never asks for a negative amount. The
    account's open bills take it first, the next bills what is left
    (services.account_credit_carry).

    total = sum of lines + tax, and due = total - credit used, exactly.
    """
    lines = [
        *usage_lines(plan=plan, usage=usage, currency=currency),
        *(_quantized(line, currency) for line in extra_lines),
        *levy_lines(levies=plan.levies, currency=currency),
    ]
    amount_lines = sum((line.amount for line in lines), ZERO)
    taxable = sum((line.amount for line in lines if line.taxable), ZERO)
    amount_tax = tax_on(amount_lines=taxable, rate=plan.vat_rate, currency=currency)
    carried = quantize(max(-(amount_lines + amount_tax), ZERO), currency)
    if carried:
        lines.append(LineDraft(kind=BillLine.Kind.CREDIT_CARRIED, amount=carried, taxable=False))
        amount_lines += carried
    total = amount_lines + amount_tax
    credit_used = credit_to_use(credit=credit, amount_due=total)
    return BillDraft(
        period=period,
        currency=currency,
        lines=tuple(lines),
        amount_lines=amount_lines,
        amount_tax=amount_tax,
        amount_total=total,
        credit_used=credit_used,
        amount_due=total - credit_used,
        credit_carried=carried,
    )


def estimate_correction_line(
    *,
    plan: PlanTerms,
    real_quantity: Decimal,
    months: int,
    billed_quantity: Decimal,
    billed_amount: Decimal,
    currency: str,
) -> LineDraft | None:
    """The line that corrects months billed on an estimate once a reading shows
    what they really used, or None when the estimates were right.

    `real_quantity` was used over `months` months, which the estimated bills
    charged as `billed_quantity` for `billed_amount` (their consumption lines).
    The real use is priced on the plan's tranches stretched to the `months` (a
    tranche of 0-50 kWh a month is 0-100 kWh over two), as if spread evenly over
    them; the line is that price less what the estimates charged: a debit when
    they fell short, a credit when they overshot. Taxed like the consumption it
    corrects.
    """
    if not plan.is_utility or months < 1:
        return None
    stretched = [
        TierTerms(
            position=t.position,
            from_quantity=t.from_quantity * months,
            to_quantity=None if t.to_quantity is None else t.to_quantity * months,
            unit_price=t.unit_price,
        )
        for t in plan.tiers
    ]
    priced = tiered_lines(tiers=stretched, usage=real_quantity, unit=plan.unit, currency=currency)
    amount = sum((line.amount for line in priced), ZERO) - billed_amount
    quantity = real_quantity - billed_quantity
    if not amount and not quantity:
        return None
    return LineDraft(kind=BillLine.Kind.ESTIMATE_CORRECTION, amount=amount, quantity=quantity, unit=plan.unit)


def credit_to_use(*, credit: Decimal, amount_due: Decimal) -> Decimal:
    """What a new bill takes from the account's credit: all of it, up to what it asks."""
    return max(min(credit, amount_due), ZERO)


def _quantized(line: LineDraft, currency: str) -> LineDraft:
    amount = quantize(line.amount, currency)
    if amount == line.amount:
        return line
    return LineDraft(**{**line.__dict__, "amount": amount})


def price_period(*, plan: Plan, usage: Mapping[str, Decimal], currency: str) -> list[LineDraft]:
    """The fee and usage lines of one month on `plan` (no levies, no tax): the
    tranche arithmetic alone, for a price list. A bill, or a preview of one, is
    `bill_compute`'s. `plan.tiers` should be prefetched."""
    terms = PlanTerms(
        kind=plan.kind, monthly_fee=plan.monthly_fee, vat_rate=ZERO,
        tiers=tuple(TierTerms(position=t.position, from_quantity=t.from_quantity, to_quantity=t.to_quantity,
                              unit_price=t.unit_price) for t in plan.tiers.all()),
        included_minutes=plan.included_minutes, included_sms=plan.included_sms,
        included_data_gb=plan.included_data_gb, price_per_minute=plan.price_per_minute,
        price_per_sms=plan.price_per_sms, price_per_gb=plan.price_per_gb,
    )  # fmt: skip
    return usage_lines(plan=terms, usage=usage, currency=currency)


def tax_on(*, amount_lines: Decimal, rate: Decimal, currency: str) -> Decimal:
    return quantize(amount_lines * rate, currency)
