"""The consumption chart, drawn server-side as SVG: no script, no CDN, and
readable on a phone that has neither."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .selectors import ConsumptionPoint

# Small drawing units, so the 12-unit labels stay legible once a phone scales it down.
WIDTH, HEIGHT = 480, 200
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 40, 6, 10, 24


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    center: float
    width: float
    height: float
    point: ConsumptionPoint
    label: str  # month abbreviation under every fourth bar


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


def bar_chart(points: list[ConsumptionPoint], *, rtl: bool, month_labels: list[str]) -> Chart:
    """Bars oldest to newest, left to right, or right to left for Arabic."""
    plot_width = WIDTH - PAD_START - PAD_END
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = _nice_ceiling(max((p.quantity for p in points), default=Decimal(0)))
    slot = plot_width / max(len(points), 1)
    bars = []
    for i, (point, month) in enumerate(zip(points, month_labels, strict=True)):
        h = float(point.quantity / top) * plot_height
        x = PAD_START + i * slot + slot * 0.15
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
            )
        )
    gridlines = [(round(PAD_TOP + plot_height * (1 - f), 1), top * Decimal(str(f))) for f in (0, 0.5, 1)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        gridlines=gridlines,
        axis_x=WIDTH - PAD_START + 6 if rtl else PAD_START - 6,
        axis_anchor="start" if rtl else "end",
        baseline_y=PAD_TOP + plot_height,
    )


def chart_marks(
    chart: Chart, *, unit: str, month: Callable[[date], str], number: Callable[[Decimal], str]
) -> SafeString:
    """The chart's grid, bars and labels as SVG, built here rather than in the
    template: 24 bars of template filters cost more than the page's queries."""
    parts = []
    for y, value in chart.gridlines:
        parts.append(
            format_html(
                '<line x1="0" x2="{}" y1="{}" y2="{}" class="grid"/>'
                '<text x="{}" y="{}" text-anchor="{}" dy="4" class="axis" direction="ltr">{}</text>',
                chart.width, y, y, chart.axis_x, y, chart.axis_anchor, number(value),
            )
        )  # fmt: skip
    for bar in chart.bars:
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {} {}</title></rect>',
                bar.x, bar.y, bar.width, bar.height, month(bar.point.period), number(bar.point.quantity), unit,
            )
        )  # fmt: skip
        if bar.label:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>',
                    bar.center,
                    chart.height - 6,
                    bar.label,
                )
            )
    return mark_safe("".join(parts))  # noqa: S308 - every part above went through format_html
