"""Bill PDFs: drawn by WeasyPrint from an HTML template
(templates/jinja2/billing/bill_pdf.html) in the reader's language, Arabic right
to left and shaped, French and English left to right.

The fonts ship with the project (billing/pdf_assets/fonts, SIL Open Font
Licence) and are named by @font-face, so a PDF looks the same on every machine
whatever fonts its OS has. WeasyPrint fetches those files and nothing else: no
network, no other file, whatever a subscriber typed into their name or address.

What a bill's PDF shows is read first into a `BillDocument` (a few small
queries), then drawn (a few hundred milliseconds of CPU). The download keeps
drawn PDFs for a few minutes under a key made of that document and of the code
that draws it (template, stylesheet, fonts, translations), so a bill that
changes in any way, by any writer, gets a new key: nothing to invalidate.

QR code payload: `{SITE_URL}/b/{bill number}?amount={amount due}&currency={code}`.
A phone's camera opens the bill (and its Pay button) in the reader's language;
a counter or bank app reads the bill number (the account number is its first
ten digits) and the amount due, in the plain decimal form the payments API takes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import babel
import segno
import weasyprint
from django.conf import settings
from django.core.cache import cache as django_cache
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone, translation
from markupsafe import Markup
from weasyprint.text.fonts import FontConfiguration

from accounts.selectors import agency_cards
from core.dates import format_cldr_date
from core.money import babel_locale, format_quantity
from notifications.events import Attachment
from notifications.services import message_object_key

from .charts import HEIGHT, PAD_BOTTOM, PAD_END, PAD_START, PAD_TOP, WIDTH, bar_chart
from .models import PRIMARY_UNIT, Bill, BillLine, Consumption, ServiceKind, Unit, bill_line_title
from .numbers import format_account_number
from .selectors import ConsumptionPoint

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "pdf_assets"
TEMPLATE = "billing/bill_pdf.html"
MIMETYPE = "application/pdf"
CHART_PERIODS = 12
# Everything that changes how a given bill is drawn; hashed into the cache key.
_CODE_FILES = (
    Path(__file__),
    Path(__file__).resolve().parent / "charts.py",
    Path(settings.BASE_DIR) / "templates" / "jinja2" / TEMPLATE,
)


class PdfLanguageError(ValueError):
    pass


# --- What a bill's PDF shows ---------------------------------------------------


@dataclass(frozen=True)
class LineRow:
    kind: str
    tier: int | None
    quantity: Decimal | None
    unit: str
    unit_price: Decimal | None
    amount: Decimal
    # A levy line's name in the document's language ("" for the other lines).
    levy_name: str = ""

    def get_kind_display(self) -> str:
        return BillLine.Kind(self.kind).label

    @property
    def label(self) -> str:
        return self.levy_name or self.get_kind_display()

    @property
    def title(self) -> str:
        return bill_line_title(self.label, self.tier)

    def get_unit_display(self) -> str:
        return Unit(self.unit).label if self.unit else ""


@dataclass(frozen=True)
class AgencyBlock:
    name_ar: str
    name_fr: str
    address: str
    city: str
    phone: str  # the country's own spelling
    # (ISO weekday, ((opens, closes), ...)) for each day the agency opens.
    week: tuple[tuple[int, tuple[tuple[dt.time, dt.time], ...]], ...]


@dataclass(frozen=True)
class BillDocument:
    """Everything a bill's PDF shows, and nothing else: its repr is the cache key."""

    language: str
    operator_name: str
    number: str
    account_number: str
    kind: str
    plan_name: str
    customer_name: str
    meter_number: str
    service_address: str
    period: dt.date
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount_lines: Decimal
    amount_tax: Decimal
    amount_total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    is_estimated: bool
    lines: tuple[LineRow, ...]
    unit: str
    consumption: tuple[ConsumptionPoint, ...]  # oldest first, up to the bill's period
    agency: AgencyBlock | None
    payment_payload: str

    @property
    def display_account_number(self) -> str:
        return format_account_number(self.account_number)

    def get_kind_display(self) -> str:
        return ServiceKind(self.kind).label

    def get_unit_display(self) -> str:
        return Unit(self.unit).label

    @property
    def period_consumption(self) -> ConsumptionPoint | None:
        return next((p for p in self.consumption if p.period == self.period), None)


def payment_payload(*, bill: Bill) -> str:
    """What the QR code carries (the module's docstring says why this shape)."""
    link = settings.SITE_URL.rstrip("/") + reverse("bill_short_link", args=[bill.number])
    return f"{link}?{urlencode({'amount': f'{bill.amount_due:f}', 'currency': bill.currency})}"


def _language(language: str) -> str:
    if language not in dict(settings.LANGUAGES):
        raise PdfLanguageError(f"No bill PDF in {language!r}")
    return language


def _agency_blocks(agency_ids: Iterable[int]) -> dict[int, AgencyBlock]:
    """Each agency's address and usual week (the public agencies page's selector)."""
    blocks = {}
    for card in agency_cards(today=timezone.localdate(), agency_ids=set(agency_ids)):
        agency = card.agency
        blocks[agency.pk] = AgencyBlock(
            name_ar=agency.name_ar,
            name_fr=agency.name_fr,
            address=agency.address,
            city=agency.city,
            phone=card.phone_display,
            week=tuple((day.weekday, day.openings) for day in card.week if day.openings),
        )
    return blocks


def _consumption(bill: Bill) -> tuple[ConsumptionPoint, ...]:
    """The account's main unit over the last CHART_PERIODS months up to the bill's."""
    rows = (
        Consumption.objects.filter(
            account_id=bill.account_id, unit=PRIMARY_UNIT[bill.account.kind], period__lte=bill.period
        )
        .order_by("-period")
        .values_list("period", "quantity", "meter_index")[:CHART_PERIODS]
    )
    return tuple(
        ConsumptionPoint(period=period, quantity=quantity, meter_index=meter_index, year_before=None)
        for period, quantity, meter_index in reversed(rows)
    )


def _line_rows(bill: Bill, language: str) -> tuple[LineRow, ...]:
    """The bill's lines, a levy named in `language` (in French where it has no such name)."""
    rows = (
        BillLine.objects.filter(bill=bill)
        .order_by("position")
        .values_list(
            "kind", "tier", "quantity", "unit", "unit_price", "amount", f"levy__name_{language}", "levy__name_fr"
        )
    )
    return tuple(LineRow(*row, levy_name=name or name_fr or "") for *row, name, name_fr in rows)


def bill_documents(*, bills: Sequence[tuple[Bill, str]]) -> list[BillDocument]:
    """What each (bill, language) shows. Bills should come with `account__plan` and
    `account__subscriber` selected; a few queries per bill (its lines, its chart),
    one for all their agencies."""
    subscribers = [bill.account.subscriber for bill, _language_ in bills]
    agencies = _agency_blocks({s.agency_id for s in subscribers})
    documents = []
    for bill, language in bills:
        language = _language(language)
        account, subscriber = bill.account, bill.account.subscriber
        plan = account.plan
        documents.append(
            BillDocument(
                language=language,
                operator_name=settings.SELFCARE_OPERATOR_NAME,
                number=bill.number,
                account_number=account.number,
                kind=account.kind,
                plan_name=getattr(plan, f"name_{language}", "") or plan.name_fr,
                customer_name=subscriber.name_in(language),
                meter_number=account.meter_number,
                service_address=account.service_address,
                period=bill.period,
                issue_date=bill.issue_date,
                due_date=bill.due_date,
                currency=bill.currency,
                amount_lines=bill.amount_lines,
                amount_tax=bill.amount_tax,
                amount_total=bill.amount_total,
                amount_paid=bill.amount_paid,
                amount_due=bill.amount_due,
                is_estimated=bill.is_estimated,
                lines=_line_rows(bill, language),
                unit=PRIMARY_UNIT[account.kind],
                consumption=_consumption(bill),
                agency=agencies.get(subscriber.agency_id),
                payment_payload=payment_payload(bill=bill),
            )
        )
    return documents


# --- Drawing ---------------------------------------------------------------------


class _AssetsOnly(weasyprint.URLFetcher):
    """WeasyPrint's fetcher, allowed our own assets (the fonts) and data: URIs
    (the logo) only. Any other URL stops the rendering: a PDF must never fall
    back to the machine's fonts, nor fetch what a document names."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file", "data"}, fail_on_errors=True)

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("file:") and not url.startswith(ASSETS.as_uri() + "/"):
            raise ValueError(f"Not one of the PDF assets: {url}")
        return super().fetch(url, headers)


_drawing = threading.local()


def _stylesheet() -> tuple[weasyprint.CSS, FontConfiguration]:
    """The stylesheet, parsed once with its fonts loaded, per thread: parsing it
    and loading the four fonts took a fifth of each drawing. Per thread because
    WeasyPrint's font configuration (fontconfig and Pango objects) is not meant
    to be shared by threads drawing at the same time (runserver, a threaded worker)."""
    if getattr(_drawing, "stylesheet", None) is None:
        font_config = FontConfiguration()
        stylesheet = weasyprint.CSS(
            filename=str(ASSETS / "bill.css"), url_fetcher=_AssetsOnly(), font_config=font_config
        )
        _drawing.stylesheet = (stylesheet, font_config)
    return _drawing.stylesheet


@cache
def _logo_uri() -> str:
    """The operator's logo (SELFCARE_OPERATOR_LOGO: a PNG, JPEG or SVG file) as a
    data: URI, read once; empty without one (the name is printed instead)."""
    path = settings.SELFCARE_OPERATOR_LOGO
    if not path:
        return ""
    mimetype = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
    data = Path(path).read_bytes()
    return f"data:{mimetype[Path(path).suffix.lower()]};base64,{base64.b64encode(data).decode()}"


@cache
def code_fingerprint() -> str:
    """A hash of everything besides the data that shapes a PDF: this module, the
    chart, the template, the stylesheet, the fonts, the compiled translations,
    the logo, and WeasyPrint's and Babel's versions. Read once per process."""
    digest = hashlib.sha256(f"{weasyprint.__version__} {babel.__version__}".encode())
    files = [*_CODE_FILES, *sorted(ASSETS.rglob("*")), *sorted(Path(settings.BASE_DIR, "locale").rglob("*.mo"))]
    if settings.SELFCARE_OPERATOR_LOGO:
        files.append(Path(settings.SELFCARE_OPERATOR_LOGO))
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _week(document: BillDocument) -> list[tuple[str, list[str]]]:
    """The agency's week in a few lines, days with the same hours together:
    ("lundi - vendredi", ["08:00-12:00", "14:00-17:00"]), with en dashes."""
    locale = babel_locale(document.language)
    names = [format_cldr_date(dt.date(2024, 1, day), "EEEE", locale) for day in range(1, 8)]  # 2024-01-01: a Monday
    groups: list[tuple[int, int, tuple]] = []
    for weekday, openings in document.agency.week if document.agency else ():
        if groups and groups[-1][1] == weekday - 1 and groups[-1][2] == openings:
            groups[-1] = (groups[-1][0], weekday, openings)
        else:
            groups.append((weekday, weekday, openings))
    return [
        (
            names[first - 1] if first == last else f"{names[first - 1]} – {names[last - 1]}",
            [f"{opens:%H:%M}–{closes:%H:%M}" for opens, closes in openings],
        )
        for first, last, openings in groups
    ]


def _qr_svg(payload: str) -> Markup:
    # segno writes the SVG itself from the payload (a URL we built): no user text.
    # One fixed mask (each of the eight makes a valid code): scoring all eight in
    # pure Python cost a tenth of the drawing.
    svg = segno.make(payload, error="m", mask=4).svg_inline(scale=2.5, border=0, dark="#1c2430")
    return Markup(svg)  # noqa: S704 - segno's own markup, the payload is escaped by it


@dataclass(frozen=True)
class ChartColumn:
    month: str
    quantity: str
    current: bool  # the billed month


BAR_COLOUR, CURRENT_COLOUR, LINE_COLOUR = "#0b5cab", "#e8a33d", "#5b6574"


def _chart(document: BillDocument) -> dict[str, Any] | None:
    """The consumption chart: bars as SVG (the consumption page's geometry,
    mirrored in Arabic), months and quantities as HTML in columns of the same
    widths. Text stays out of the SVG because WeasyPrint lays SVG text out
    letter by letter, unshaped (Arabic would come out broken) and in the
    machine's fonts rather than ours."""
    points = list(document.consumption)
    if not points:
        return None
    locale = babel_locale(document.language)
    chart = bar_chart(points, rtl=document.language == "ar", month_labels=[""] * len(points))
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    rects = "".join(
        f'<rect x="{bar.x}" y="{bar.y}" width="{bar.width}" height="{bar.height}" '
        f'fill="{CURRENT_COLOUR if bar.point.period == document.period else BAR_COLOUR}"/>'
        for bar in chart.bars
    )
    baseline = f'<line x1="0" x2="{WIDTH}" y1="{chart.baseline_y}" y2="{chart.baseline_y}" stroke="{LINE_COLOUR}"/>'
    svg = Markup(  # noqa: S704 - numbers this module computed, no text
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 {PAD_TOP} {WIDTH} {plot_height}" '
        f'preserveAspectRatio="none">{rects}{baseline}</svg>'
    )
    slot = (WIDTH - PAD_START - PAD_END) / len(points)
    return {
        "svg": svg,
        "columns": [
            ChartColumn(
                month=format_cldr_date(p.period, "MMM", locale),
                quantity=format_quantity(p.quantity, locale=locale),
                current=p.period == document.period,
            )
            for p in points
        ],
        # Column widths (%) of the label rows: the start padding, each bar's slot, the end padding.
        "widths": tuple(round(100 * w / WIDTH, 3) for w in (PAD_START, slot, PAD_END)),
    }


def _text_dir(text: str) -> str:
    """The direction of a typed text, from its first letter: a French address on
    an Arabic bill keeps "12 avenue…" in its order, as dir="auto" would."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "ltr"


def _agency_name(document: BillDocument) -> str:
    if document.agency is None:
        return ""
    return document.agency.name_ar if document.language == "ar" else document.agency.name_fr


def _html(document: BillDocument) -> str:
    with translation.override(document.language):
        return get_template(TEMPLATE, using="jinja2").render(
            {
                "doc": document,
                "logo": _logo_uri(),
                "chart": _chart(document),
                "qr": _qr_svg(document.payment_payload),
                "week": _week(document),
                "agency_name": _agency_name(document),
                "is_rtl": translation.get_language_bidi(),
                "text_dir": _text_dir,
            }
        )


def _layout(document: BillDocument) -> weasyprint.Document:
    stylesheet, font_config = _stylesheet()
    html = weasyprint.HTML(string=_html(document), base_url=ASSETS.as_uri() + "/", url_fetcher=_AssetsOnly())
    return html.render(stylesheets=[stylesheet], font_config=font_config)


def documents_pdf(documents: Sequence[BillDocument]) -> bytes:
    """One PDF of one or several bills, each starting on a new page with its own
    page numbers, each in its own language."""
    if not documents:
        raise ValueError("No bill to draw")
    laid_out = [_layout(document) for document in documents]
    pages = [page for document in laid_out for page in document.pages]
    output = io.BytesIO()
    laid_out[0].copy(pages).write_pdf(output)
    return output.getvalue()


# --- Entry points ----------------------------------------------------------------


def _fresh(bill: Bill) -> Bill:
    # Read again with what the PDF shows, in one statement: the PDF (and its cache
    # key) reflects the row as stored, not an instance the caller loaded earlier.
    return Bill.objects.select_related("account__plan", "account__subscriber").get(pk=bill.pk)


def bill_pdf(*, bill: Bill, language: str) -> bytes:
    """The bill's PDF in `language` (ar, fr or en), drawn now."""
    (document,) = bill_documents(bills=[(_fresh(bill), language)])
    return documents_pdf([document])


def bill_pdf_cached(*, bill: Bill, language: str) -> bytes:
    """`bill_pdf`, kept SELFCARE_BILL_PDF_CACHE_SECONDS under a key made of what it
    shows and of the code that draws it: a bill changed by any writer (a payment,
    a queryset update, a renamed agency) has another key, so a stale PDF cannot
    be served. The short life bounds the memory, not the correctness."""
    (document,) = bill_documents(bills=[(_fresh(bill), language)])
    # The CLDR locale too (ar_TN): SELFCARE_PHONE_REGION sets the number formats.
    shown = f"{code_fingerprint()}|{babel_locale(language)}|{document!r}"
    key = "billpdf:" + hashlib.sha256(shown.encode()).hexdigest()
    pdf = django_cache.get(key)
    if pdf is None:
        pdf = documents_pdf([document])
        django_cache.set(key, pdf, timeout=settings.SELFCARE_BILL_PDF_CACHE_SECONDS)
    return pdf


def bills_pdf(*, bills: Sequence[tuple[Bill, str]]) -> bytes:
    """Several bills, each in its own language, as one PDF (the paper-copy batch)."""
    return documents_pdf(bill_documents(bills=bills))


def bill_pdf_filename(number: str) -> str:
    return f"bill-{number}.pdf"


def bill_email_attachments(message: Any) -> list[Attachment]:
    """The e-mail channel's hook (BILL_ISSUED.email_attachments): the bill the
    message is about, as a PDF in the message's language, drawn just before
    sending. The outbox row keeps only the bill's number (its object key)."""
    number = message_object_key(message=message)
    bill = Bill.objects.select_related("account__plan", "account__subscriber").filter(number=number).first()
    if bill is None:
        return []
    return [
        Attachment(
            filename=bill_pdf_filename(bill.number),
            content=bill_pdf(bill=bill, language=message.language),
            mimetype=MIMETYPE,
        )
    ]
