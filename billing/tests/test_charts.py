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


def test_value_labels_have_room_for_their_longest_on_a_phone() -> None:
    """Arabic "1.000" was drawn as "1.00": the label ran past the chart's edge.
    The phone draws labels at 17 units, a digit 0.636 em wide (DejaVu Sans)."""
    for language, rtl in (("ar", True), ("fr", False)):
        page = consumption_page(points("640", "1000", "870"), unit="kWh", rtl=rtl, locale=babel_locale(language))
        chart = page["chart"]
        marks = str(page["chart_marks"])
        top = max(value for _, value in chart.gridlines)
        label = "1.000" if language == "ar" else "1\u202f000"
        assert top == 1000 and f">{label}</text>" in marks
        width = len(label) * 17 * 0.636
        room = chart.width - chart.axis_x if rtl else chart.axis_x
        assert width <= room, f"{language}: {label!r} needs {width} units, has {room}"
        # The bars keep clear of the labels.
        nearest = max(bar.x + bar.width for bar in chart.bars) if rtl else min(bar.x for bar in chart.bars)
        assert (nearest <= chart.axis_x - 6) if rtl else (nearest >= chart.axis_x + 6)


def test_short_value_labels_keep_the_usual_padding() -> None:
    chart = consumption_page(points("40", "90"), unit="m³", rtl=False, locale=babel_locale("fr"))["chart"]
    assert chart.axis_x == 46
