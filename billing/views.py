"""Subscriber pages. Each view parses input, calls a selector, renders; a
subscriber asking for somebody else's account or bill gets a 404."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import get_language_bidi
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Subscriber
from accounts.selectors import subscriber_is_paperless, subscriber_or_404
from core.money import babel_locale

from . import selectors, services
from .charts import consumption_page
from .converters import BILL_NUMBER_PATTERN
from .forms import BillFilterForm
from .models import Bill, ServiceAccount
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
    context = {"subscriber": subscriber, "accounts": accounts, "overdue_total": sum(a.overdue_count for a in accounts)}
    return render(request, "billing/dashboard.html", context)


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
    bill = _bill(subscriber, number)
    today = timezone.localdate()
    return render(
        request,
        "billing/bill_detail.html",
        {
            "bill": bill,
            "lines": bill.lines.select_related("levy"),
            "is_overdue": bill.is_overdue(today),
            "today": today,
            # The paper-copy button: for those who get no paper bill, by choice or by their agency.
            "paperless": subscriber_is_paperless(subscriber_id=subscriber.pk, today=today),
        },
    )


@login_required
def consumption(request: HttpRequest, number: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    history = selectors.consumption_history(subscriber_id=subscriber.pk, account_number=number, periods=24)
    if history is None:
        raise Http404("No such account")
    page = consumption_page(
        history.points, unit=str(history.unit_label), rtl=get_language_bidi(), locale=babel_locale()
    )
    context = {"account": history, "points": list(reversed(history.points)), **page}  # newest first, as the table
    return render(request, "billing/consumption.html", context)


@login_required
def plan(request: HttpRequest, number: str) -> HttpResponse:
    account = _account(request, number)
    plans = list(selectors.plans_for_kind(kind=account.kind))
    current = selectors.plan_for_account(account=account, offered=plans)
    return render(request, "billing/plan.html", {"account": account, "current": current, "plans": plans})


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
