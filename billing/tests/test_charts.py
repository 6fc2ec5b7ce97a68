"""The consumption page's numbers (issue 10): data volumes read one way in a column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from billing.charts import FIXED_PLACES, consumption_page
from billing.models import Unit
from billing.selectors import ConsumptionPoint
from core.money import babel_locale


def points(*quantities: str) -> list[ConsumptionPoint]:
    return [
        ConsumptionPoint(period=dt.date(2026, 1 + i, 1), quantity=Decimal(q), meter_index=None, year_before=None)
        for i, q in enumerate(quantities)
    ]


def test_data_volumes_show_two_decimals_each_so_a_column_reads_one_way() -> None:
    page = consumption_page(
        points("8.850", "10.611", "9"), unit="Go", rtl=False, locale=babel_locale("fr"), places=FIXED_PLACES[Unit.GB]
    )
    quantities = [row.quantity.replace("\u202f", " ").replace("\xa0", " ") for row in page["rows"]]
    assert quantities == ["9,00 Go", "10,61 Go", "8,85 Go"]
    assert "10,61 Go" in str(page["chart_marks"])  # the bar's title too


def test_energy_keeps_dropping_its_trailing_zeros() -> None:
    page = consumption_page(points("151", "198.5"), unit="kWh", rtl=False, locale=babel_locale("fr"))
    assert [row.quantity for row in page["rows"]] == ["198,5 kWh", "151 kWh"]
    assert Unit.KWH not in FIXED_PLACES
