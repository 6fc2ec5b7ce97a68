"""Paper copies asked for by paperless subscribers, printed by their agency:
the copies of one agency for one billing period come out as one PDF (each bill
from a new page, in its subscriber's language) and are marked printed in the
same transaction, through the one service that marks them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Agency, User
from core.exceptions import ApplicationError

from .models import PrintRequest
from .pdf import bills_pdf
from .services import print_requests_mark_printed


@dataclass(frozen=True)
class PendingBatch:
    agency: Agency
    period: dt.date
    count: int


def print_batches_pending(*, agencies: QuerySet[Agency]) -> list[PendingBatch]:
    """Copies waiting to be printed, per agency (of `agencies`) and billing
    period, newest period first: one query."""
    rows = (
        PrintRequest.objects.filter(status=PrintRequest.Status.PENDING, agency__in=agencies)
        .values_list("agency", "bill__period")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_id = {agency.pk: agency for agency in agencies}
    batches = [PendingBatch(agency=by_id[agency_id], period=period, count=n) for agency_id, period, n in rows]
    return sorted(batches, key=lambda b: (b.agency.code, -b.period.toordinal()))


@dataclass(frozen=True)
class PrintedBatch:
    pdf: bytes
    count: int  # copies in this PDF, now marked printed
    request_ids: tuple[int, ...]
    remaining: int  # copies of the same agency and period still waiting (past the batch size)


class NothingToPrint(ApplicationError):
    code = "nothing_to_print"


def paper_copies_print(*, agency: Agency, period: dt.date, printed_by: User, limit: int | None = None) -> PrintedBatch:
    """The agency's waiting copies of `period`'s bills as one PDF, marked printed.

    The oldest requests first, at most `limit` (SELFCARE_PRINT_BATCH_MAX): one
    PDF stays a size a printer and a browser take. Rows are locked with SKIP
    LOCKED, so two clerks printing at once get different copies; if drawing
    fails, nothing is marked. In the PDF, copies follow the customers' names,
    as the clerk files them for collection.
    """
    limit = limit or settings.SELFCARE_PRINT_BATCH_MAX
    period = period.replace(day=1)
    pending = PrintRequest.objects.filter(agency=agency, status=PrintRequest.Status.PENDING, bill__period=period)
    with transaction.atomic():
        requests = list(
            pending.select_for_update(skip_locked=True, of=("self",))
            .select_related("bill__account__plan", "bill__account__subscriber")
            .order_by("requested_at", "pk")[:limit]
        )
        if not requests:
            raise NothingToPrint(_("No paper copy of this period waits to be printed at this agency."))
        requests.sort(key=lambda r: (r.bill.account.subscriber.full_name.casefold(), r.bill.number))
        content = bills_pdf(bills=[(r.bill, r.bill.account.subscriber.preferred_language) for r in requests])
        count = print_requests_mark_printed(requests=requests, printed_by=printed_by)
        remaining = pending.count()
    return PrintedBatch(pdf=content, count=count, request_ids=tuple(r.pk for r in requests), remaining=remaining)
