"""Subscriber pages. Each view parses input, calls a selector, renders; a
subscriber asking for somebody else's account or bill gets a 404."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language_bidi
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Subscriber
from accounts.selectors import subscriber_is_paperless, subscriber_or_404
from core.dates import format_cldr_date
from core.exceptions import ApplicationError
from core.money import babel_locale
from core.throttle import throttle_allow

from . import appointments, pdf, plan_changes, selectors, services
from .charts import FIXED_PLACES, consumption_page
from .converters import BILL_NUMBER_PATTERN
from .forms import AppointmentMoveForm, BillFilterForm, PlanChangeForm
from .models import PRIMARY_UNIT, Appointment, Bill, PlanChange, ServiceAccount
from .numbers import format_account_number

BILLS_PER_PAGE = 12
BILL_NUMBER = re.compile(BILL_NUMBER_PATTERN)


def _account(request: HttpRequest, number: str) -> ServiceAccount:
    subscriber = subscriber_or_404(request)
    return get_object_or_404(selectors.accounts_of(subscriber=subscriber).select_related("plan"), number=number)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    accounts = selectors.account_list_for_dashboard(subscriber_id=subscriber.pk, today=timezone.localdate())
    context = {
        "subscriber": subscriber,
        "accounts": accounts,
        "overdue_total": sum(a.overdue_count for a in accounts),
        "appointments": selectors.appointments_upcoming(subscriber_id=subscriber.pk, today=timezone.localdate()),
    }
    return render(request, "billing/dashboard.html", context)


@login_required
@require_POST
def appointment_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask once to move a technician's visit; staff see the wish and set the date."""
    subscriber = subscriber_or_404(request)
    appointment = get_object_or_404(Appointment, pk=pk, account__subscriber=subscriber)
    form = AppointmentMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a day and a time of day."))
        return redirect("billing:dashboard")
    try:
        appointments.appointment_move_request(
            appointment=appointment,
            preferred_date=form.cleaned_data["preferred_date"],
            preferred_window=form.cleaned_data["preferred_window"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your request was sent: your agency will confirm the new date."))
    return redirect("billing:dashboard")


@login_required
def bill_list(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    today = timezone.localdate()
    accounts, years = selectors.bill_filter_choices(subscriber_id=subscriber.pk)
    form = BillFilterForm(
        request.GET or None, accounts=[(number, format_account_number(number)) for number in accounts], years=years
    )
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.bill_page(
        subscriber_id=subscriber.pk,
        today=today,
        account_number=filters.get("account") or None,
        status=filters.get("status") or None,
        year=filters.get("year"),
        page=request.GET.get("page"),
        per_page=BILLS_PER_PAGE,
    )
    # The pager links carry the filters as validated, never the raw query string.
    query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    context = {"form": form, "page": page, "query": query, "today": today}
    return render(request, "billing/bill_list.html", context)


def _bill(subscriber: Subscriber, number: str) -> Bill:
    try:
        return selectors.bill_get(subscriber=subscriber, number=number)
    except Bill.DoesNotExist:
        raise Http404("No such bill") from None


@login_required
def bill_detail(request: HttpRequest, number: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    return _bill_page(request, subscriber, _bill(subscriber, number))


def _bill_page(request: HttpRequest, subscriber: Subscriber, bill: Bill, *, pdf_refused: bool = False) -> HttpResponse:
    today = timezone.localdate()
    # The paper-copy button: for those who get no paper bill, by choice or by their agency.
    paperless = subscriber_is_paperless(subscriber_id=subscriber.pk, today=today)
    context = {
        "bill": bill,
        "lines": bill.lines.select_related("levy"),
        "is_overdue": bill.is_overdue(today),
        "today": today,
        "paperless": paperless,
        # A copy already asked for shows where it stands instead of the button again.
        "paper_copy": selectors.bill_paper_copy_latest(bill=bill) if paperless else None,
        # Too many PDF downloads: the bill page says so, as a 429.
        "pdf_refused": pdf_refused,
    }
    return render(request, "billing/bill_detail.html", context, status=429 if pdf_refused else 200)


@login_required
def bill_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """The bill as a PDF in the page's language, to keep or print."""
    subscriber = subscriber_or_404(request)
    bill = _bill(subscriber, number)
    limit = settings.SELFCARE_BILL_PDFS_PER_HOUR
    if not throttle_allow(limits=[("bill_pdf", f"subscriber:{subscriber.pk}", limit, 3600)]):
        return _bill_page(request, subscriber, bill, pdf_refused=True)  # 429, the bill page saying why
    response = HttpResponse(
        pdf.bill_pdf_cached(bill=bill, language=translation.get_language()), content_type=pdf.MIMETYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{pdf.bill_pdf_filename(bill.number)}"'
    patch_cache_control(response, no_store=True, private=True)
    return response


@login_required
def consumption(request: HttpRequest, number: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    history = selectors.consumption_history(subscriber_id=subscriber.pk, account_number=number, periods=24)
    if history is None:
        raise Http404("No such account")
    page = consumption_page(
        history.points,
        unit=str(history.unit_label),
        rtl=get_language_bidi(),
        locale=babel_locale(),
        places=FIXED_PLACES.get(PRIMARY_UNIT[history.kind]),
    )
    context = {"account": history, "points": list(reversed(history.points)), **page}  # newest first, as the table
    return render(request, "billing/consumption.html", context)


@login_required
def plan(request: HttpRequest, number: str) -> HttpResponse:
    """The account's plan (once), its change not yet in effect, and the other plans offered."""
    account = _account(request, number)
    plans = list(selectors.plans_for_kind(kind=account.kind))
    current = selectors.plan_for_account(account=account, offered=plans)
    open_change = plan_changes.plan_change_open(account=account)
    blocked = plan_changes.plan_change_blocked(account=account)
    context = {
        "account": account,
        "current": current,
        "others": [p for p in plans if p.pk != current.pk],
        "open_change": open_change,
        "can_change": open_change is None and blocked is None,
        "blocked": blocked.message if blocked else "",
    }
    return render(request, "billing/plan.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def plan_change(request: HttpRequest, number: str) -> HttpResponse:
    """GET: what moving to the chosen plan changes on the next bill. POST: confirm it."""
    account = _account(request, number)
    form = PlanChangeForm(request.POST if request.method == "POST" else request.GET, kind=account.kind)
    if not form.is_valid():
        messages.error(request, _("Choose one of the plans offered for this service."))
        return redirect("billing:plan", number=account.number)
    to_plan, mode = form.cleaned_data["plan"], form.cleaned_data["mode"]
    try:
        if request.method == "POST":
            change = plan_changes.plan_change_request(
                account=account, to_plan=to_plan, mode=mode, requested_by=request.user
            )
            messages.success(request, _plan_change_done(change))
            return redirect("billing:plan", number=account.number)
        preview = plan_changes.plan_change_preview(account=account, to_plan=to_plan, mode=mode)
    except plan_changes.PlanChangeRefused as exc:
        messages.error(request, exc.message)
        return redirect("billing:plan", number=account.number)
    return render(request, "billing/plan_change.html", {"account": account, "preview": preview})


def _plan_change_done(change: PlanChange) -> str:
    if change.status == PlanChange.Status.PENDING_APPROVAL:
        return _("Your request was sent to your agency for approval. We will let you know.")
    if change.status == PlanChange.Status.APPLIED:
        return _("Done: your plan is now %(plan)s.") % {"plan": change.to_plan.name}
    return _("Done: your plan changes to %(plan)s on %(date)s. You can cancel until then.") % {
        "plan": change.to_plan.name,
        "date": format_cldr_date(change.effective_date, "d MMMM y", babel_locale()),
    }


@login_required
@require_POST
def plan_change_cancel(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    account = _account(request, number)
    change = get_object_or_404(PlanChange, account=account, pk=pk)
    try:
        plan_changes.plan_change_cancel(change=change, cancelled_by=request.user)
    except plan_changes.PlanChangeRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your plan change was cancelled."))
    return redirect("billing:plan", number=account.number)


@login_required
@require_POST
def bill_paper_copy(request: HttpRequest, number: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    bill = _bill(subscriber, number)
    services.bill_request_paper_copy(bill=bill, requested_by=request.user)
    messages.success(
        request, _("Your agency will print this bill: collect it at %(agency)s.") % {"agency": subscriber.agency.name}
    )
    return redirect("billing:bill_detail", number=bill.number)


def bill_short_link(request: HttpRequest, number: str) -> HttpResponse:
    """`/b/<number>/` from an SMS: the bill page in the reader's language (login first if needed)."""
    if not BILL_NUMBER.fullmatch(number):
        raise Http404("No such bill")  # the bill page's URL refuses it too
    language = translation.get_language_from_request(request)
    with translation.override(language):
        return redirect(reverse("billing:bill_detail", args=[number]))
