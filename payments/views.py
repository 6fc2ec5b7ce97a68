"""Subscriber pages of payments: pay (choose, then off to the provider), the
order's result, receipts and the payment history. Somebody else's account,
bill, order or receipt is a 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from accounts.selectors import subscriber_or_404
from billing.models import Bill, ServiceAccount
from billing.selectors import accounts_of, bills_of
from core.exceptions import ApplicationError

from . import orders, selectors
from .checkout import checkout_origins
from .forms import PayForm
from .models import Payment, PaymentOrder


def _account(request: HttpRequest, number: str) -> ServiceAccount:
    return get_object_or_404(accounts_of(subscriber=subscriber_or_404(request)), number=number)


@never_cache
@login_required
def pay(request: HttpRequest, number: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    account = _account(request, number)
    open_bills = list(Bill.objects.filter(Bill.open_q(), account=account).order_by("due_date", "pk"))
    asked = request.GET.get("bill")
    if asked and not any(b.number == asked for b in open_bills):
        raise Http404("No such open bill")
    choices = [(b.number, b) for b in open_bills]
    providers = selectors.checkout_providers()
    form = PayForm(
        request.POST or None,
        bill_choices=[(b.number, b.number) for b in open_bills],
        providers=providers,
        initial={"bills": [asked] if asked else [b.number for b in open_bills], "provider": providers.first()},
    )
    if request.method == "POST":
        # A bill that is not one of this account's open bills: somebody else's, or gone.
        chosen = request.POST.getlist("bills")
        if chosen and bills_of(subscriber=subscriber).filter(number__in=chosen, account=account).count() != len(
            set(chosen)
        ):
            raise Http404("No such bill")
        if form.is_valid():
            bills = [b for b in open_bills if b.number in form.cleaned_data["bills"]]
            try:
                order = orders.order_create(
                    subscriber=subscriber,
                    account=account,
                    provider=form.cleaned_data["provider"],
                    bills=bills,
                    amount=None if bills else form.cleaned_data["amount"],
                )
                return_url = request.build_absolute_uri(reverse("payments:order_result", args=[order.reference]))
                return redirect(orders.order_start(order=order, return_url=return_url))
            except ApplicationError as error:
                form.add_error(None, error.message)
    context = {"account": account, "form": form, "bills": choices, "providers": providers}
    response = render(request, "payments/pay.html", context)
    # The form's redirect leads to the chosen provider's checkout; the policy's
    # form-action ('self') would stop the browser there, so it names them.
    origins = checkout_origins(providers)
    if origins:
        response._csp_update = {"form-action": origins}  # django-csp's per-response update
    return response


@never_cache
@login_required
def order_result(request: HttpRequest, reference: str) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    order = get_object_or_404(
        PaymentOrder.objects.select_related("account", "provider", "payment"),
        subscriber=subscriber,
        reference=reference,
    )
    if request.GET.get("outcome") == "cancelled" and order.is_open:
        # The subscriber's own word about their own order; a payment already made still wins.
        order = orders.order_refresh(order=order)
        if order.is_open:
            orders.order_fail(order=order, status=PaymentOrder.Status.CANCELLED)
    order = orders.order_refresh(order=order)
    return render(request, "payments/order_result.html", {"order": order})


def _payment(request: HttpRequest, receipt_number: str) -> Payment:
    subscriber = subscriber_or_404(request)
    return get_object_or_404(
        Payment.objects.select_related("account", "provider"),
        account__subscriber=subscriber,
        receipt_number=receipt_number,
    )


@login_required
def receipt(request: HttpRequest, receipt_number: str) -> HttpResponse:
    payment = _payment(request, receipt_number)
    context = {"payment": payment, "allocations": payment.allocations.select_related("bill").order_by("pk")}
    return render(request, "payments/receipt.html", context)


@login_required
def receipt_print(request: HttpRequest, receipt_number: str) -> HttpResponse:
    payment = _payment(request, receipt_number)
    context = {
        "payment": payment,
        "allocations": payment.allocations.select_related("bill").order_by("pk"),
        "printed_at": timezone.now(),
    }
    return render(request, "payments/receipt_print.html", context)


@login_required
def history(request: HttpRequest, number: str) -> HttpResponse:
    account = _account(request, number)
    payments = selectors.payments_of_account(account=account)[:100]
    return render(request, "payments/history.html", {"account": account, "payments": payments})
