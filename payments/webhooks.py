"""Wallets' callbacks: outside the language prefixes, no session, no CSRF.

Konnect's webhook is an unsigned `GET …?payment_ref=`: anybody can call it, so it
proves nothing and changes nothing by itself. It only makes Selfcare ask Konnect
about that payment (`orders.order_sync`), which applies what Konnect answers.

Answers: 200 once Konnect was asked (whatever it said); 400 for a missing,
repeated or malformed payment_ref; 404 for a reference no order has; 429 past
the throttle; 503 with Retry-After when Konnect cannot be reached or answers
nonsense, so that a retrying sender comes back (nothing was changed, and the
poller asks again anyway). Never a 500 for Konnect's trouble.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from accounts.backends import client_address
from core.audit import audit_context
from core.throttle import throttle_allow

from . import orders, selectors
from .checkout import CheckoutError
from .gateways.konnect import PAYMENT_REF, KonnectCheckout

RETRY_AFTER = 60


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)
    if status in (429, 503):
        response["Retry-After"] = str(RETRY_AFTER)
    return response


@csrf_exempt
@never_cache
@require_GET
def konnect_webhook(request: HttpRequest) -> HttpResponse:
    refs = request.GET.getlist("payment_ref")
    if len(refs) != 1 or not PAYMENT_REF.fullmatch(refs[0]):
        return _error(400, "validation_error", "Expected one payment_ref of 1 to 128 letters, digits, - or _.")
    payment_ref = refs[0]
    # Each call makes us call Konnect (whose rate limit is ours to keep): limited
    # per client address and per payment, before any database work.
    if not throttle_allow(
        limits=[
            ("konnect-hook-client", client_address(request), settings.KONNECT_WEBHOOK_PER_CLIENT, 60),
            ("konnect-hook-payment", payment_ref, settings.KONNECT_WEBHOOK_PER_PAYMENT, 60),
        ]
    ):
        return _error(429, "too_many_requests", "Too many calls; the payment is also checked periodically.")
    order = selectors.order_for_provider_ref(key_ids=KonnectCheckout.keys, provider_ref=payment_ref)
    if order is None:
        return _error(404, "payment_not_found", "No order has this payment_ref.")
    try:
        # Whatever it applies is Konnect's answer, not the caller's: written as the system's.
        with audit_context(source="konnect_webhook", remote_addr=client_address(request)):
            orders.order_sync(order=order)
    except CheckoutError:
        return _error(503, "provider_unavailable", "Konnect could not be asked about this payment; retry later.")
    return JsonResponse({"received": True})
