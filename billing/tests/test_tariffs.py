from __future__ import annotations

import datetime as dt
from decimal import Decimal
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from billing.models import BillLine, Plan, PlanLevy, ServiceKind, Unit
from billing.tariffs import (
    BillDraft,
    LevyTerms,
    LineDraft,
    PlanTerms,
    TierTerms,
    bill_compute,
    plan_terms,
    price_period,
)
from core.money import currency_exponent, quantize

from .factories import PlanFactory


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_usage_within_the_first_tranche_only_fills_it() -> None:
    plan = PlanFactory()
    lines = price_period(plan=plan, usage={Unit.KWH: Decimal("12.5")}, currency="TND")
    assert [line.amount for line in lines] == [Decimal("0.800"), Decimal("0.775")]


@pytest.mark.django_db
def test_each_line_is_quantized_to_the_currency() -> None:
    plan = PlanFactory(tiers=[(0, None, "0.123456")])
    (fee, energy) = price_period(plan=plan, usage={Unit.KWH: Decimal(7)}, currency="XOF")
    assert fee.amount == Decimal(1)
    assert energy.amount == Decimal(1)  # 0.864192 rounds to 1 franc
    assert energy.unit_price == Decimal("0.123456")  # the price keeps its precision


@pytest.mark.django_db
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


# --- bill_compute: worked examples, figures done by hand -----------------------

# STEG-like residential tranches: the first 50 kWh, the next 50 (kWh 51 to 100),
# the next 100 (101 to 200)… A tranche is (from, to]: usage above `from`, up to `to`.
STEG = (
    TierTerms(position=1, from_quantity=D("0"), to_quantity=D("50"), unit_price=D("0.062")),
    TierTerms(position=2, from_quantity=D("50"), to_quantity=D("100"), unit_price=D("0.096")),
    TierTerms(position=3, from_quantity=D("100"), to_quantity=D("200"), unit_price=D("0.176")),
    TierTerms(position=4, from_quantity=D("200"), to_quantity=D("300"), unit_price=D("0.218")),
    TierTerms(position=5, from_quantity=D("300"), to_quantity=D("500"), unit_price=D("0.341")),
    TierTerms(position=6, from_quantity=D("500"), to_quantity=None, unit_price=D("0.414")),
)
LEVIES = (
    LevyTerms(position=1, amount=D("0.300"), taxable=True, id=None),  # municipal levy, taxed
    LevyTerms(position=2, amount=D("1.000"), taxable=False, id=None),  # TV fee, outside VAT
)
RESIDENTIAL = PlanTerms(
    kind=ServiceKind.ELECTRICITY, monthly_fee=D("0.800"), vat_rate=D("0.19"), tiers=STEG, levies=LEVIES
)
NOV = dt.date(2026, 11, 1)


def kwh(quantity: str, plan: PlanTerms = RESIDENTIAL, **kwargs) -> BillDraft:
    return bill_compute(plan=plan, usage={Unit.KWH: D(quantity)}, period=NOV, currency="TND", **kwargs)


def tranches(draft: BillDraft) -> list[tuple[int, Decimal, Decimal]]:
    return [(line.tier, line.quantity, line.amount) for line in draft.lines if line.kind == "consumption"]


def test_50_kwh_fill_the_first_tranche_exactly() -> None:
    draft = kwh("50")
    assert tranches(draft) == [(1, D(50), D("3.100"))]  # 50 × 0.062
    # fee 0.800 + energy 3.100 + levies 0.300 + 1.000
    assert draft.amount_lines == D("5.200")
    # VAT on fee, energy and the municipal levy, not the TV fee: 4.200 × 0.19 = 0.798
    assert draft.amount_tax == D("0.798")
    assert draft.amount_total == draft.amount_due == D("5.998")
    assert [line.kind for line in draft.lines] == ["fixed_fee", "consumption", "levy", "levy"]


def test_the_51st_kwh_is_priced_in_the_second_tranche() -> None:
    draft = kwh("51")
    assert tranches(draft) == [(1, D(50), D("3.100")), (2, D(1), D("0.096"))]
    assert draft.amount_lines == D("5.296")  # 0.800 + 3.100 + 0.096 + 0.300 + 1.000
    assert draft.amount_tax == D("0.816")  # 4.296 × 0.19 = 0.81624
    assert draft.amount_total == D("6.112")


def test_100_kwh_fill_two_tranches_and_not_a_third() -> None:
    assert tranches(kwh("100")) == [(1, D(50), D("3.100")), (2, D(50), D("4.800"))]


def test_half_a_kwh_past_100_is_half_a_kwh_of_the_third_tranche() -> None:
    draft = kwh("100.5")
    assert tranches(draft) == [(1, D(50), D("3.100")), (2, D(50), D("4.800")), (3, D("0.5"), D("0.088"))]
    assert draft.amount_lines == D("10.088")  # 0.800 + 7.988 + 1.300
    assert draft.amount_tax == D("1.727")  # 9.088 × 0.19 = 1.72672
    assert draft.amount_total == D("11.815")


def test_250_kwh_reach_the_fourth_tranche() -> None:
    draft = kwh("250")
    # 50 × 0.062 = 3.100, 50 × 0.096 = 4.800, 100 × 0.176 = 17.600, 50 × 0.218 = 10.900
    assert tranches(draft) == [
        (1, D(50), D("3.100")), (2, D(50), D("4.800")), (3, D(100), D("17.600")), (4, D(50), D("10.900")),
    ]  # fmt: skip
    assert draft.amount_lines == D("38.500")  # 0.800 + 36.400 + 1.300
    assert draft.amount_tax == D("7.125")  # 37.500 × 0.19
    assert draft.amount_total == D("45.625")


def test_above_the_last_bound_every_kwh_is_in_the_open_tranche() -> None:
    draft = kwh("612")
    assert tranches(draft)[-2:] == [(5, D(200), D("68.200")), (6, D(112), D("46.368"))]  # 112 × 0.414


def test_no_usage_is_the_fee_and_the_levies() -> None:
    draft = kwh("0")
    assert [line.kind for line in draft.lines] == ["fixed_fee", "levy", "levy"]
    assert draft.amount_lines == D("2.100")
    assert draft.amount_tax == D("0.209")  # 1.100 × 0.19 = 0.209


def test_a_line_rounds_half_up_to_the_millime() -> None:
    plan = PlanTerms(kind=ServiceKind.WATER, monthly_fee=D(0), vat_rate=D(0),
                     tiers=(TierTerms(1, D(0), None, D("0.1")),))  # fmt: skip
    draft = bill_compute(plan=plan, usage={Unit.M3: D("0.125")}, period=NOV, currency="TND")
    assert tranches(draft) == [(1, D("0.125"), D("0.013"))]  # 0.0125 → 0.013


def test_francs_cfa_have_no_decimals() -> None:
    plan = PlanTerms(
        kind=ServiceKind.ELECTRICITY, monthly_fee=D(500), vat_rate=D("0.18"),
        tiers=(TierTerms(1, D(0), D(100), D("62.5")), TierTerms(2, D(100), None, D("95.25"))),
    )  # fmt: skip
    draft = bill_compute(plan=plan, usage={Unit.KWH: D(101)}, period=NOV, currency="XOF")
    assert tranches(draft) == [(1, D(100), D(6250)), (2, D(1), D(95))]  # 95.25 → 95
    assert draft.amount_lines == D(6845)
    assert draft.amount_tax == D(1232)  # 6845 × 0.18 = 1232.1
    assert draft.amount_total == D(8077)


def test_dirhams_have_two_decimals() -> None:
    plan = PlanTerms(
        kind=ServiceKind.ELECTRICITY, monthly_fee=D("22.65"), vat_rate=D("0.14"),
        tiers=(TierTerms(1, D(0), D(100), D("0.9010")), TierTerms(2, D(100), D(150), D("1.0732"))),
    )  # fmt: skip
    draft = bill_compute(plan=plan, usage={Unit.KWH: D(120)}, period=NOV, currency="MAD")
    assert tranches(draft) == [(1, D(100), D("90.10")), (2, D(20), D("21.46"))]  # 21.464 → 21.46
    assert draft.amount_lines == D("134.21")
    assert draft.amount_tax == D("18.79")  # 134.21 × 0.14 = 18.7894
    assert draft.amount_total == D("153.00")


MOBILE = PlanTerms(
    kind=ServiceKind.MOBILE, monthly_fee=D("25.000"), vat_rate=D("0.19"), included_minutes=300, included_sms=100,
    included_data_gb=D(10), price_per_minute=D("0.150"), price_per_sms=D("0.050"), price_per_gb=D("2.000"),
)  # fmt: skip


def test_telecom_bills_the_fee_and_what_goes_beyond_each_allowance() -> None:
    usage = {Unit.MINUTES: D(320), Unit.SMS: D(80), Unit.GB: D("12.5")}
    draft = bill_compute(plan=MOBILE, usage=usage, period=NOV, currency="TND")
    assert [(line.kind, line.unit, line.quantity, line.amount) for line in draft.lines] == [
        ("fixed_fee", "", None, D("25.000")),
        ("overage", Unit.MINUTES, D(20), D("3.000")),  # 20 × 0.150
        ("overage", Unit.GB, D("2.5"), D("5.000")),  # 2.5 × 2.000; 80 SMS are within the 100
    ]
    assert (draft.amount_lines, draft.amount_tax, draft.amount_total) == (D("33.000"), D("6.270"), D("39.270"))


def test_credit_pays_part_or_all_of_the_bill_and_never_more() -> None:
    usage = {Unit.MINUTES: D(320), Unit.GB: D("12.5")}
    part = bill_compute(plan=MOBILE, usage=usage, period=NOV, currency="TND", credit=D("10.000"))
    assert (part.credit_used, part.amount_due) == (D("10.000"), D("29.270"))
    whole = bill_compute(plan=MOBILE, usage=usage, period=NOV, currency="TND", credit=D("50.000"))
    assert (whole.credit_used, whole.amount_due) == (D("39.270"), D(0))


def test_extra_lines_are_taxed_and_come_before_the_levies() -> None:
    fee = LineDraft(kind="fee", amount=D("1.000"), quantity=D(1))
    draft = kwh("10", extra_lines=[fee])
    assert [line.kind for line in draft.lines] == ["fixed_fee", "consumption", "fee", "levy", "levy"]
    assert draft.amount_tax == D("0.517")  # (0.800 + 0.620 + 1.000 + 0.300) × 0.19 = 0.5168


@pytest.mark.django_db
def test_plan_terms_take_the_plans_rate_else_the_operators(settings) -> None:
    settings.SELFCARE_VAT_RATE = "0.07"
    plan = PlanFactory()
    PlanLevy.objects.create(plan=plan, position=1, name_ar="م", name_fr="L", name_en="L", amount=D("0.200"))
    plan = Plan.objects.prefetch_related("tiers", "levies").get(pk=plan.pk)
    terms = plan_terms(plan)
    assert terms.vat_rate == D("0.07")
    assert [(t.position, t.to_quantity) for t in terms.tiers] == [(1, D(50)), (2, D(100)), (3, None)]
    assert [(levy.amount, levy.taxable) for levy in terms.levies] == [(D("0.200"), False)]
    plan.vat_rate = D("0.13")
    assert plan_terms(plan).vat_rate == D("0.13")


# --- bill_compute: properties ---------------------------------------------------

CURRENCIES = ("TND", "XOF", "MAD")


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def utility_plans(draw: st.DrawFn) -> PlanTerms:
    """Contiguous tranches from 0, the last one open, as utilities publish them."""
    bounds = sorted(draw(st.sets(decimals("0.001", "2000", 3), min_size=0, max_size=5)))
    lows = [D(0), *bounds]
    highs = [*bounds, None]
    tiers = tuple(
        TierTerms(position=i, from_quantity=low, to_quantity=high, unit_price=draw(decimals("0", "5", 6)))
        for i, (low, high) in enumerate(zip(lows, highs, strict=True), start=1)
    )
    levies = tuple(
        LevyTerms(position=i, amount=draw(decimals("0", "50", 3)), taxable=draw(st.booleans()))
        for i in range(1, draw(st.integers(0, 3)) + 1)
    )
    return PlanTerms(
        kind=draw(st.sampled_from([ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.GAS])),
        monthly_fee=draw(decimals("0", "100", 3)), vat_rate=draw(decimals("0", "0.3", 4)), tiers=tiers, levies=levies,
    )  # fmt: skip


def assert_in_currency(amount: Decimal, currency: str) -> None:
    assert amount == quantize(amount, currency)
    assert amount.as_tuple().exponent == -currency_exponent(currency), amount


@settings_(max_examples=300, deadline=None)
@given(plan=utility_plans(), usage=decimals("0", "100000", 3), currency=st.sampled_from(CURRENCIES),
       credit=decimals("0", "5000", 3))  # fmt: skip
def test_totals_are_the_sum_of_lines_plus_tax_in_the_currencys_exponent(
    plan: PlanTerms, usage: Decimal, currency: str, credit: Decimal
) -> None:
    credit = quantize(credit, currency)
    draft = bill_compute(plan=plan, usage={plan.unit: usage}, period=NOV, currency=currency, credit=credit)
    assert draft.amount_lines == sum(line.amount for line in draft.lines)
    assert draft.amount_total == draft.amount_lines + draft.amount_tax
    assert draft.amount_due == draft.amount_total - draft.credit_used
    assert D(0) <= draft.credit_used <= min(credit, draft.amount_total)
    for amount in [*(line.amount for line in draft.lines), draft.amount_lines, draft.amount_tax,
                   draft.amount_total, draft.credit_used, draft.amount_due]:  # fmt: skip
        assert_in_currency(amount, currency)


@settings_(max_examples=300, deadline=None)
@given(plan=utility_plans(), usage=decimals("0", "100000", 3))
def test_tranche_quantities_add_up_to_the_usage(plan: PlanTerms, usage: Decimal) -> None:
    draft = bill_compute(plan=plan, usage={plan.unit: usage}, period=NOV, currency="TND")
    consumption = [line for line in draft.lines if line.kind == "consumption"]
    assert sum((line.quantity for line in consumption), D(0)) == usage
    assert all(line.quantity > 0 for line in consumption)
    assert [line.tier for line in consumption] == sorted(line.tier for line in consumption)


@settings_(max_examples=300, deadline=None)
@given(plan=utility_plans(), a=decimals("0", "100000", 3), b=decimals("0", "100000", 3),
       currency=st.sampled_from(CURRENCIES))  # fmt: skip
def test_more_usage_never_costs_less(plan: PlanTerms, a: Decimal, b: Decimal, currency: str) -> None:
    low, high = sorted((a, b))
    cheap = bill_compute(plan=plan, usage={plan.unit: low}, period=NOV, currency=currency)
    dear = bill_compute(plan=plan, usage={plan.unit: high}, period=NOV, currency=currency)
    assert cheap.amount_lines <= dear.amount_lines
    assert cheap.amount_total <= dear.amount_total


@settings_(max_examples=200, deadline=None)
@given(minutes=decimals("0", "5000", 0), sms=decimals("0", "2000", 0), gb=decimals("0", "500", 3),
       currency=st.sampled_from(CURRENCIES))  # fmt: skip
def test_telecom_overage_is_what_goes_beyond_each_allowance(
    minutes: Decimal, sms: Decimal, gb: Decimal, currency: str
) -> None:
    usage = {Unit.MINUTES: minutes, Unit.SMS: sms, Unit.GB: gb}
    draft = bill_compute(plan=MOBILE, usage=usage, period=NOV, currency=currency)
    overage = {line.unit: line.quantity for line in draft.lines if line.kind == "overage"}
    for unit, included in ((Unit.MINUTES, D(300)), (Unit.SMS, D(100)), (Unit.GB, D(10))):
        beyond = usage[unit] - included
        assert overage.get(unit, D(0)) == max(beyond, D(0))
    assert draft.amount_total == draft.amount_lines + draft.amount_tax
    for line in draft.lines:
        assert_in_currency(line.amount, currency)


@settings_(max_examples=300, deadline=None)
@given(plan=utility_plans(), usage=decimals("0", "2000", 3), refund=decimals("0", "5000", 3),
       currency=st.sampled_from(CURRENCIES), credit=decimals("0", "500", 3))  # fmt: skip
def test_a_bill_with_credit_lines_never_asks_for_less_than_nothing(
    plan: PlanTerms, usage: Decimal, refund: Decimal, currency: str, credit: Decimal
) -> None:
    # a credit line (a plan change's proration, the correction of estimates) of any size
    extra = [LineDraft(kind=BillLine.Kind.ESTIMATE_CORRECTION, amount=-quantize(refund, currency))]
    credit = quantize(credit, currency)
    draft = bill_compute(plan=plan, usage={plan.unit: usage}, period=NOV, currency=currency, extra_lines=extra,
                         credit=credit)  # fmt: skip
    assert draft.amount_total >= 0 and draft.amount_due >= 0
    assert draft.amount_lines == sum(line.amount for line in draft.lines)
    assert draft.amount_total == draft.amount_lines + draft.amount_tax
    carried = [line for line in draft.lines if line.kind == BillLine.Kind.CREDIT_CARRIED]
    if carried:
        # the rest of the credits, last and untaxed; the bill comes to zero and uses no credit
        assert draft.lines[-1] is carried[0] and not carried[0].taxable
        assert draft.credit_carried == carried[0].amount > 0
        assert (draft.amount_total, draft.credit_used) == (D(0), D(0))
        without = sum((line.amount for line in draft.lines[:-1]), D(0))
        assert draft.credit_carried == -(without + draft.amount_tax)
    else:
        assert draft.credit_carried == 0
    for amount in [*(line.amount for line in draft.lines), draft.amount_tax, draft.credit_carried]:
        assert_in_currency(amount, currency)


def test_a_credit_beyond_the_charges_is_carried_worked_example() -> None:
    # fee 0.800 + 10 kWh x 0.062 = 1.420; a credit of 17.560: -16.140, VAT 19 % -3.0666 -> -3.067;
    # 19.207 left in the subscriber's favour, carried; the bill comes to 0.000
    plan = PlanTerms(kind=ServiceKind.ELECTRICITY, monthly_fee=D("0.800"), vat_rate=D("0.19"),
                     tiers=(TierTerms(position=1, from_quantity=D(0), to_quantity=None, unit_price=D("0.062")),))  # fmt: skip
    draft = bill_compute(
        plan=plan, usage={Unit.KWH: D(10)}, period=NOV, currency="TND",
        extra_lines=[LineDraft(kind=BillLine.Kind.ESTIMATE_CORRECTION, amount=D("-17.560"))],
    )  # fmt: skip
    assert [line.kind for line in draft.lines] == ["fixed_fee", "consumption", "estimate_fix", "credit_carried"]
    assert (draft.amount_tax, draft.credit_carried, draft.amount_lines, draft.amount_total) == (
        D("-3.067"), D("19.207"), D("3.067"), D("0.000"),
    )  # fmt: skip
