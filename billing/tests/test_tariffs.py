from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import BillLine, ServiceKind, Unit
from billing.tariffs import price_period

from .factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_progressive_tranches_charge_each_kwh_at_its_own_tier() -> None:
    # given 0–50 @0.062, 50–100 @0.096, over 100 @0.176 and a 0.800 fee
    plan = PlanFactory()
    # when 180 kWh are used
    lines = price_period(plan=plan, usage={Unit.KWH: Decimal(180)}, currency="TND")
    # then 50, 50 and 80 kWh are charged at their tier prices
    assert [(line.kind, line.tier, line.quantity) for line in lines] == [
        (BillLine.Kind.FIXED_FEE, None, None),
        (BillLine.Kind.CONSUMPTION, 1, Decimal(50)),
        (BillLine.Kind.CONSUMPTION, 2, Decimal(50)),
        (BillLine.Kind.CONSUMPTION, 3, Decimal(80)),
    ]
    assert [line.amount for line in lines] == [Decimal("0.800"), Decimal("3.100"), Decimal("4.800"), Decimal("14.080")]


def test_usage_within_the_first_tranche_only_fills_it() -> None:
    plan = PlanFactory()
    lines = price_period(plan=plan, usage={Unit.KWH: Decimal("12.5")}, currency="TND")
    assert [line.amount for line in lines] == [Decimal("0.800"), Decimal("0.775")]


def test_each_line_is_quantized_to_the_currency() -> None:
    plan = PlanFactory(tiers=[(0, None, "0.123456")])
    (fee, energy) = price_period(plan=plan, usage={Unit.KWH: Decimal(7)}, currency="XOF")
    assert fee.amount == Decimal(1)
    assert energy.amount == Decimal(1)  # 0.864192 rounds to 1 franc
    assert energy.unit_price == Decimal("0.123456")  # the price keeps its precision


def test_telecom_plans_charge_only_beyond_the_allowance() -> None:
    plan = PlanFactory(
        kind=ServiceKind.MOBILE,
        monthly_fee=Decimal("25.000"),
        included_minutes=300,
        included_sms=100,
        included_data_gb=Decimal(10),
        price_per_minute=Decimal("0.150"),
        price_per_sms=Decimal("0.050"),
        price_per_gb=Decimal("2.000"),
    )
    lines = price_period(
        plan=plan, usage={Unit.MINUTES: Decimal(320), Unit.SMS: Decimal(80), Unit.GB: Decimal("12.5")}, currency="TND"
    )
    assert [(line.kind, line.unit, line.quantity, line.amount) for line in lines] == [
        (BillLine.Kind.FIXED_FEE, "", None, Decimal("25.000")),
        (BillLine.Kind.OVERAGE, Unit.MINUTES, Decimal(20), Decimal("3.000")),
        (BillLine.Kind.OVERAGE, Unit.GB, Decimal("2.5"), Decimal("5.000")),
    ]
