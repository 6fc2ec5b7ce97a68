"""The sandbox bank's checkout page: the amount, "Pay" and "Cancel".

On "Pay" it reports the payment to Selfcare through the signed bank API, over
real HTTP, as a bank would, then sends the customer back to Selfcare's return
address. It trusts its query only as far as a bank would: the amount shown is
the amount sent, and the return address must be on Selfcare's host.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from .client import payment_post

_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AMOUNT = re.compile(r"[0-9]{1,14}(\.[0-9]{1,3})?")
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _selfcare_url(request: HttpRequest) -> str:
    return settings.SANDBOX_BANK_SELFCARE_URL or f"{request.scheme}://{request.get_host()}"


def _return_ok(request: HttpRequest, url: str) -> bool:
    """Only back to Selfcare (no open redirect through the bank)."""
    parts, home = urlsplit(url), urlsplit(_selfcare_url(request))
    return parts.scheme in ("http", "https") and parts.netloc == home.netloc and url.startswith(f"{parts.scheme}://")


def checkout(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    order = {
        key: data.get(key, "") for key in ("reference", "account", "amount", "currency", "bill", "expires", "return")
    }
    if not (
        _REFERENCE.fullmatch(order["reference"])
        and _PLAIN.fullmatch(order["account"])
        and _AMOUNT.fullmatch(order["amount"])
        and _PLAIN.fullmatch(order["currency"])
        and (not order["bill"] or _PLAIN.fullmatch(order["bill"]))
        and order["expires"].isdigit()
        and _return_ok(request, order["return"])
    ):
        return HttpResponseBadRequest(_("This checkout link is not valid."))
    expired = int(order["expires"]) < time.time()
    context = {"order": order, "expired": expired, "error": ""}
    if request.method == "POST" and not expired:
        if request.POST.get("action") == "cancel":
            return redirect(order["return"] + "?" + urlencode({"outcome": "cancelled"}))
        payment = {
            "reference": order["reference"],
            "account_number": order["account"],
            "amount": order["amount"],
            "currency": order["currency"],
            "paid_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "channel": "sandbox",
        }
        if order["bill"]:
            payment["bill_number"] = order["bill"]
        try:
            status, answer = payment_post(
                base_url=_selfcare_url(request),
                key_id=settings.SANDBOX_BANK_KEY_ID,
                secret=settings.SANDBOX_BANK_SECRET,
                payment=payment,
            )
        except OSError as error:
            status, answer = 0, {"error": {"code": "unreachable", "message": str(error)}}
        # 409: this order was already paid here (a second click): Selfcare knows.
        if status in (200, 201, 409):
            return redirect(order["return"])
        context["error"] = answer.get("error", {}).get("code", str(status))
    return render(request, "sandbox_bank/checkout.html", context, status=200)
