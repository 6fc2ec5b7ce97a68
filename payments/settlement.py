"""Settlement files: what a provider says it paid, compared with what we applied.

Each provider sends a daily CSV of the payments it settled: `reference, amount,
currency, paid_at` (an optional header row naming those columns in any order,
`,` or `;` between fields, UTF-8 with or without a byte-order mark; amounts and
dates as in the API: "12.500", ISO 8601 with a UTC offset). Importing one:

1. reads and checks the whole file first; every bad line is reported with its
   number, and then nothing at all is imported;
2. compares it with our payments of that provider, in one transaction:
   - matched: the reference is ours, applied, with the same amount;
   - amount mismatch: the reference is ours but the amount differs, or we
     reversed that payment (its money is no longer on the account, while the
     provider says it settled it);
   - missing on our side: a reference we never applied;
   - missing on their side: a payment we applied (not reversed) on a day the
     file covers, which the file does not list. A reversed payment the file
     leaves out is as expected, not missing;
3. keeps the result (SettlementImport and its lines), so the same file (its
   SHA-256) is refused the second time.

Nothing here changes a payment: a mismatch is for a person to look into.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from core.audit import audit_as
from core.exceptions import ApplicationError

from .models import REFERENCE_REGEX, Payment, Provider, SettlementImport, SettlementLine
from .selectors import settlement_providers
from .services import InvalidAmount, amount_error_text, amount_parse

COLUMNS = ("reference", "amount", "currency", "paid_at")
# A daily file; a week's or a month's is fine, a year's is a mistake.
MAX_PERIOD_DAYS = 31
# A page of errors is enough to see what is wrong with a file.
MAX_ERRORS_SHOWN = 100
_REFERENCE = re.compile(REFERENCE_REGEX)


@dataclass(frozen=True)
class LineError:
    line: int | None  # None: the file as a whole
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return _("Line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


class SettlementRefused(ApplicationError):
    """The file was not imported; `errors` says why, line by line."""

    code = "settlement_refused"

    def __init__(self, errors: list[LineError], *, code: str | None = None) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:3]), code=code, extra={"errors": len(errors)})


@dataclass
class _Row:
    line: int
    reference: str
    amount: Decimal
    currency: str
    paid_at: dt.datetime


@dataclass
class _Parsed:
    rows: list[_Row] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


# --- Reading -------------------------------------------------------------------


def _read(file: IO[bytes]) -> bytes:
    limit = settings.SELFCARE_SETTLEMENT_MAX_BYTES
    size = getattr(file, "size", None)
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(limit + 1) if size is None or size <= limit else b""
    if (size is not None and size > limit) or len(data) > limit:
        raise SettlementRefused(
            [LineError(None, _("The file is larger than %(size)s: split it by day.") % {"size": _size(limit)})],
            code="file_too_large",
        )
    if not data.strip():
        raise SettlementRefused([LineError(None, _("The file is empty."))], code="file_empty")
    return data


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return _("%(count)s MB") % {"count": f"{limit / (1024 * 1024):g}"}
    return _("%(count)s kB") % {"count": f"{limit / 1024:g}"}


def _text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettlementRefused(
            [LineError(line, _("this is not UTF-8 text; export the file as CSV in UTF-8."))], code="not_utf8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SettlementRefused([LineError(line, _("this is not a text file."))], code="not_text")
    return text


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if ";" in first else ","


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line number, stripped fields) of each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    previous_end = 0
    try:
        for fields in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if any(f.strip() for f in fields):
                yield line, [f.strip() for f in fields]
    except csv.Error:
        raise SettlementRefused(
            [
                LineError(
                    reader.line_num or previous_end + 1,
                    _("the line cannot be read as CSV (check its quotes)."),
                )
            ],
            code="not_csv",
        ) from None


def _parse(text: str) -> _Parsed:
    parsed = _Parsed()
    currency = settings.SELFCARE_CURRENCY
    max_lines = settings.SELFCARE_SETTLEMENT_MAX_LINES
    records = _records(text)
    positions = dict(zip(COLUMNS, range(len(COLUMNS)), strict=True))
    width = len(COLUMNS)
    seen: dict[str, int] = {}
    data_lines = 0
    for index, (line, fields) in enumerate(records):
        if index == 0 and "reference" in (f.lower() for f in fields):
            names = [f.lower() for f in fields]
            missing = [c for c in COLUMNS if c not in names]
            if missing or len(set(names)) != len(names):
                parsed.errors.append(
                    LineError(
                        line,
                        _("the header must name each of the columns %(columns)s once.")
                        % {"columns": ", ".join(COLUMNS)},
                    )
                )
                return parsed
            positions, width = {c: names.index(c) for c in COLUMNS}, len(names)
            continue
        data_lines += 1
        if data_lines > max_lines:
            raise SettlementRefused(
                [
                    LineError(
                        None,
                        ngettext(
                            "The file has more than %(count)d line: split it by day.",
                            "The file has more than %(count)d lines: split it by day.",
                            max_lines,
                        )
                        % {"count": max_lines},
                    )
                ],
                code="too_many_lines",
            )
        if len(fields) != width:
            parsed.errors.append(
                LineError(
                    line,
                    _("%(expected)d fields expected (%(columns)s), %(found)d found.")
                    % {"expected": width, "columns": ", ".join(COLUMNS), "found": len(fields)},
                )
            )
            continue
        row = _row(line, **{c: fields[positions[c]] for c in COLUMNS}, expected_currency=currency, errors=parsed.errors)
        if row is None:
            continue
        if row.reference in seen:
            parsed.errors.append(
                LineError(
                    line,
                    _("reference %(reference)s is already on line %(first)d.")
                    % {"reference": row.reference, "first": seen[row.reference]},
                )
            )
            continue
        seen[row.reference] = line
        parsed.rows.append(row)
    return parsed


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _row(
    line: int, *, reference: str, amount: str, currency: str, paid_at: str, expected_currency: str, errors: list
) -> _Row | None:
    count = len(errors)
    if not _REFERENCE.fullmatch(reference):
        errors.append(
            LineError(
                line,
                _("reference %(value)s: 1 to 64 letters, digits, - or _.") % {"value": _shown(reference)},
            )
        )
    if currency != expected_currency:
        errors.append(
            LineError(
                line,
                _("currency %(value)s: payments here are in %(expected)s.")
                % {"value": _shown(currency), "expected": expected_currency},
            )
        )
    parsed_amount = None
    try:
        parsed_amount = amount_parse(amount, currency=expected_currency)
    except InvalidAmount as exc:
        errors.append(
            LineError(
                line,
                _("amount %(value)s: %(problem)s")
                % {
                    "value": _shown(amount),
                    "problem": amount_error_text(amount, currency=expected_currency, error=exc),
                },
            )
        )
    when = _datetime(paid_at)
    if when is None:
        errors.append(
            LineError(
                line,
                _("paid_at %(value)s: a date and time with its UTC offset, such as 2026-12-02T14:00:00+01:00.")
                % {"value": _shown(paid_at)},
            )
        )
    if len(errors) > count:
        return None
    assert parsed_amount is not None and when is not None
    return _Row(line=line, reference=reference, amount=parsed_amount, currency=currency, paid_at=when)


def _datetime(value: str) -> dt.datetime | None:
    if len(value) > 40 or "T" not in value.upper():
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _period(
    rows: list[_Row], *, start: dt.date | None, end: dt.date | None, errors: list[LineError]
) -> tuple[dt.date, dt.date] | None:
    """The days the file covers: as given, or from its first to its last payment."""
    days = {row.line: timezone.localdate(row.paid_at) for row in rows}
    if start is None or end is None:
        if not days:
            errors.append(LineError(None, _("The file lists no payment: give the days it covers.")))
            return None
        start, end = start or min(days.values()), end or max(days.values())
    if start > end:
        errors.append(LineError(None, _("The period ends before it starts.")))
        return None
    if (end - start).days >= MAX_PERIOD_DAYS:
        errors.append(LineError(None, _("A settlement file covers at most %(days)d days.") % {"days": MAX_PERIOD_DAYS}))
        return None
    for line, day in days.items():
        if not start <= day <= end:
            errors.append(
                LineError(
                    line,
                    _("paid on %(day)s, outside the period %(start)s – %(end)s.")
                    % {"day": date_format(day), "start": date_format(start), "end": date_format(end)},
                )
            )
    return start, end


# --- Importing -----------------------------------------------------------------


def settlement_import(
    *,
    provider: Provider,
    file: IO[bytes],
    user: User,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
) -> SettlementImport:
    """Import `provider`'s settlement file and compare it with our payments.

    `period_start`/`period_end` are the days the file covers (operator's time
    zone); by default its first and last payment's. Raises SettlementRefused,
    with every bad line, and imports nothing, if anything is wrong; the same
    file twice is refused too.
    """
    if not settlement_providers(user=user).filter(pk=provider.pk).exists():
        raise SettlementRefused(
            [LineError(None, _("You may not import this provider's settlement files."))], code="not_allowed"
        )
    file_name = PurePath(str(getattr(file, "name", "") or "settlement.csv")).name[:255]
    data = _read(file)
    digest = hashlib.sha256(data).hexdigest()
    _refuse_if_imported(provider=provider, digest=digest)
    parsed = _parse(_text(data))
    period = _period(parsed.rows, start=period_start, end=period_end, errors=parsed.errors)
    if parsed.errors or period is None:
        raise SettlementRefused(sorted(parsed.errors, key=lambda e: e.line or 0), code="invalid_lines")
    try:
        with audit_as(user), transaction.atomic():
            return _compare(
                provider=provider, rows=parsed.rows, period=period, file_name=file_name, digest=digest, user=user
            )
    except IntegrityError:
        # The same file uploaded twice at the same moment: the other one won.
        _refuse_if_imported(provider=provider, digest=digest)
        raise


def _refuse_if_imported(*, provider: Provider, digest: str) -> None:
    earlier = SettlementImport.objects.filter(provider=provider, sha256=digest).select_related("uploaded_by").first()
    if earlier is not None:
        raise SettlementRefused(
            [
                LineError(
                    None,
                    _("This file was already imported on %(date)s by %(user)s.")
                    % {
                        "date": date_format(timezone.localtime(earlier.uploaded_at), "DATETIME_FORMAT"),
                        "user": earlier.uploaded_by,
                    },
                )
            ],
            code="already_imported",
        )


def _payments_by_reference(*, provider: Provider, references: list[str]) -> dict[str, Payment]:
    found: dict[str, Payment] = {}
    for start in range(0, len(references), 5000):
        chunk = references[start : start + 5000]
        for payment in Payment.objects.filter(provider=provider, reference__in=chunk).only(
            "pk", "reference", "amount", "currency", "status"
        ):
            found[payment.reference] = payment
    return found


def _compare(
    *,
    provider: Provider,
    rows: list[_Row],
    period: tuple[dt.date, dt.date],
    file_name: str,
    digest: str,
    user: User,
) -> SettlementImport:
    Outcome = SettlementLine.Outcome
    ours = _payments_by_reference(provider=provider, references=[row.reference for row in rows])
    lines: list[SettlementLine] = []
    for row in rows:
        payment = ours.get(row.reference)
        if payment is None:
            outcome = Outcome.MISSING_OURS
        elif payment.status != Payment.Status.APPLIED or (payment.amount, payment.currency) != (
            row.amount,
            row.currency,
        ):
            outcome = Outcome.AMOUNT_MISMATCH
        else:
            outcome = Outcome.MATCHED
        lines.append(
            SettlementLine(
                line_number=row.line, reference=row.reference, amount=row.amount, currency=row.currency,
                paid_at=row.paid_at, outcome=outcome, payment=payment,
            )
        )  # fmt: skip
    start, end = period
    tz = timezone.get_current_timezone()
    in_file = {row.reference for row in rows}
    theirs_missing = [
        payment
        for payment in Payment.objects.filter(
            provider=provider,
            status=Payment.Status.APPLIED,
            paid_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=tz),
            paid_at__lt=dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
        )
        .only("pk", "reference", "amount", "currency")
        .order_by("paid_at", "pk")
        if payment.reference not in in_file
    ]
    lines += [
        SettlementLine(reference=p.reference, currency=p.currency, outcome=Outcome.MISSING_THEIRS, payment=p)
        for p in theirs_missing
    ]

    def total(outcome: str) -> Decimal:
        return sum((line.amount for line in lines if line.outcome == outcome), Decimal(0))

    def count(outcome: str) -> int:
        return sum(1 for line in lines if line.outcome == outcome)

    settlement = SettlementImport.objects.create(
        provider=provider, file_name=file_name, sha256=digest, uploaded_by=user, period_start=start,
        period_end=end, currency=settings.SELFCARE_CURRENCY, lines_count=len(rows),
        matched_count=count(Outcome.MATCHED), matched_total=total(Outcome.MATCHED),
        missing_ours_count=count(Outcome.MISSING_OURS), missing_ours_total=total(Outcome.MISSING_OURS),
        missing_theirs_count=len(theirs_missing),
        missing_theirs_total=sum((p.amount for p in theirs_missing), Decimal(0)),
        mismatch_count=count(Outcome.AMOUNT_MISMATCH), mismatch_total=total(Outcome.AMOUNT_MISMATCH),
    )  # fmt: skip
    for line in lines:
        line.settlement_import = settlement
    SettlementLine.objects.bulk_create(lines, batch_size=2000)
    return settlement
