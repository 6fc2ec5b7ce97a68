"""The consumption chart, drawn server-side as SVG: no script, no CDN, and
readable on a phone that has neither."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from html import escape

from babel import Locale
from django.utils.safestring import SafeString, mark_safe

from core.dates import format_cldr_date
from core.money import format_meter, format_quantity, format_quantity_fixed

from .models import Unit
from .selectors import ConsumptionPoint

# Data volumes read one way in a column: always two decimals ("8,85 Go" beside
# "10,61 Go", never "10,611 Go"); other units drop their trailing zeros.
FIXED_PLACES: dict[str, int] = {Unit.GB: 2}


def format_usage(value: Decimal, *, unit: str, locale: Locale) -> str:
    """A month's usage of `unit` as the consumption page writes it ("10,61" Go),
    for the other pages that quote it (the plan-change preview)."""
    places = FIXED_PLACES.get(unit)
    if places is None:
        return format_quantity(value, locale=locale)
    return format_quantity_fixed(value, places, locale=locale)


# Small drawing units; a phone scales the 480-unit chart down to about 320 px, so the
# stylesheet draws the labels larger there (at least 11 px on the screen) and the
# value labels get a wider margin.
WIDTH, HEIGHT = 480, 200
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 52, 6, 10, 26
# The value labels stand LABEL_GAP units from the plot. PAD_START is a minimum: it
# grows with the longest label, estimated at the phone's font size (the stylesheet's
# 17 units, its largest) and a digit's advance (0.636 em in DejaVu Sans, a phone's
# usual fallback; separators are narrower), so "1.000" or "10 000" is never cut.
LABEL_GAP, AXIS_FONT_SIZE, CHAR_EM = 6, 17, 0.64


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    center: float
    width: float
    height: float
    point: ConsumptionPoint
    label: str  # month abbreviation under every fourth bar
    minor: bool  # a label a phone leaves out (it keeps every eighth), for room


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    gridlines: list[tuple[float, Decimal]]  # (y, value)
    axis_x: float  # where the value labels stand
    axis_anchor: str
    baseline_y: float


def _nice_ceiling(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        ceiling = Decimal(str(step)) * magnitude
        if ceiling >= value:
            return ceiling
    return value


def start_padding(labels: list[str]) -> int:
    """Room before the plot for the longest value label, never less than PAD_START."""
    longest = max((len(label) for label in labels), default=0)
    return max(PAD_START, LABEL_GAP + math.ceil(longest * AXIS_FONT_SIZE * CHAR_EM))


def bar_chart(
    points: list[ConsumptionPoint],
    *,
    rtl: bool,
    month_labels: list[str],
    value_label: Callable[[Decimal], str] | None = None,
) -> Chart:
    """Bars oldest to newest, left to right, or right to left for Arabic.

    `value_label` formats the gridlines' values as `chart_marks` will draw them,
    so the start padding makes room for the longest."""
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = _nice_ceiling(max((p.quantity for p in points), default=Decimal(0)))
    fractions = (0, 0.5, 1)
    values = [top * Decimal(str(f)) for f in fractions]
    pad_start = start_padding([value_label(v) for v in values]) if value_label else PAD_START
    plot_width = WIDTH - pad_start - PAD_END
    slot = plot_width / max(len(points), 1)
    bars = []
    for i, (point, month) in enumerate(zip(points, month_labels, strict=True)):
        h = float(point.quantity / top) * plot_height
        x = pad_start + i * slot + slot * 0.15
        if rtl:
            x = WIDTH - x - slot * 0.7
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(PAD_TOP + plot_height - h, 1),
                center=round(x + slot * 0.35, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                point=point,
                label=month if i % 4 == 0 else "",
                minor=i % 8 != 0,
            )
        )
    gridlines = [(round(PAD_TOP + plot_height * (1 - f), 1), v) for f, v in zip(fractions, values, strict=True)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        gridlines=gridlines,
        axis_x=WIDTH - pad_start + LABEL_GAP if rtl else pad_start - LABEL_GAP,
        axis_anchor="start" if rtl else "end",
        baseline_y=PAD_TOP + plot_height,
    )


def chart_marks(
    chart: Chart,
    *,
    unit: str,
    month: Callable[[date], str],
    number: Callable[[Decimal], str],
    usage: Callable[[Decimal], str] | None = None,
) -> SafeString:
    """The chart's grid, bars and labels as SVG, built here rather than in the
    template: 24 bars of template filters cost more than the page's queries.

    Coordinates are floats this module computed; every text (months, numbers,
    the unit) is escaped.
    """
    unit = escape(str(unit))
    parts = []
    for y, value in chart.gridlines:
        parts.append(
            f'<line x1="0" x2="{chart.width}" y1="{y}" y2="{y}" class="grid"/>'
            f'<text x="{chart.axis_x}" y="{y}" text-anchor="{chart.axis_anchor}" dy="4" class="axis" direction="ltr">'
            f"{escape(number(value))}</text>"
        )
    for bar in chart.bars:
        title = f"{escape(month(bar.point.period))}: {escape((usage or number)(bar.point.quantity))} {unit}"
        parts.append(
            f'<rect x="{bar.x}" y="{bar.y}" width="{bar.width}" height="{bar.height}" class="bar"><title>{title}</title></rect>'
        )
        if bar.label:
            parts.append(
                f'<text x="{bar.center}" y="{chart.height - 6}" text-anchor="middle" '
                f'class="axis{" minor" if bar.minor else ""}">{escape(bar.label)}</text>'
            )
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped, the rest are our numbers


@dataclass(frozen=True)
class TableRow:
    """One month of the consumption table, formatted."""

    month: str
    quantity: str
    meter: str
    year_before: str
    change: str


def consumption_page(
    points: list[ConsumptionPoint], *, unit: str, rtl: bool, locale: Locale, places: int | None = None
) -> dict[str, object]:
    """The chart, its SVG marks and the table (newest first) of the consumption
    page, every number and month formatted for `locale`, looked up once: a page
    of 24 months formats about 150 of them."""

    # Each month and quantity shows two or three times (a bar's title, its row,
    # the row a year later): formatted once per page.
    @cache
    def month(day: date) -> str:
        return format_cldr_date(day, "LLLL y", locale)

    @cache
    def number(value: Decimal) -> str:
        return format_quantity(value, locale=locale)

    @cache
    def usage(value: Decimal) -> str:
        return number(value) if places is None else format_quantity_fixed(value, places, locale=locale)

    # CLDR's short months under the bars ("juil. 25"), clearer than Django's ("Jui 25").
    chart = bar_chart(
        points,
        rtl=rtl,
        month_labels=[format_cldr_date(p.period, "MMM yy", locale) for p in points],
        value_label=number,
    )
    rows = []
    for point in reversed(points):
        change = point.change_percent
        rows.append(
            TableRow(
                month=month(point.period),
                quantity=f"{usage(point.quantity)} {unit}",
                meter=format_meter(point.meter_index, locale=locale) or "—",
                year_before=f"{usage(point.year_before)} {unit}" if point.year_before is not None else "—",
                change="—" if change is None else f"{'+' if change > 0 else ''}{number(change)} %",
            )
        )
    return {
        "chart": chart,
        "chart_marks": chart_marks(chart, unit=unit, month=month, number=number, usage=usage),
        "rows": rows,
    }
