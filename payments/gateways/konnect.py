"""Konnect (Tunisia): a wallet checkout the gateway hosts, with an unsigned webhook.

The flow, as Konnect's public client libraries use its API v2:

- `POST {KONNECT_API_URL}/api/v2/payments/init-payment`, header `x-api-key`, JSON
  `{receiverWalletId, token, amount (millimes for TND, cents for EUR/USD, an
  integer), type, description, acceptedPaymentMethods, lifespan (minutes),
  checkoutForm, addPaymentFeesToAmount, orderId, webhook, successUrl, failUrl,
  theme}` → 200 `{payUrl, paymentRef}`; errors come as `{errors: [...]}`.
- `GET {KONNECT_API_URL}/api/v2/payments/{paymentRef}` → `{payment: {id, status
  ("completed", "pending", "expired"), amount, token, orderId, type,
  transactions: [{status ("success", "failed_payment"), amount, ...}],
  successfulTransactions, failedTransactions, createdAt, updatedAt, ...}}`.
- When a payment changes, Konnect calls `GET {webhook}?payment_ref={paymentRef}`,
  unsigned: `payments.webhooks.konnect_webhook` only asks `fetch_status` again.

Sources (checked for the field names and values, none copied): Konnect's docs
(docs.konnect.network, "initiate-payment", "get-payment-details"); the PHP SDK
machour/konnect (src/Gateway.php: `X-Api-Key`, `payments/init-payment`,
`payments/{id}`, a non-200 answer carrying `errors`); the Java SDK of
oussemasahbeni/konnect (model/KonnectPayment.java and its enums: payment status
completed/pending/expired, transaction status success/failed_payment, payment
methods wallet/bank_card/e-DINAR).

The provider row has key id `konnect` (kind mobile money). Other wallets (Wave,
Orange Money, MTN MoMo) are one module each beside this one, registered under
their own key id.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.hostile import HostileInput, json_body_parse
from core.money import from_minor_units, to_minor_units

from ..checkout import CheckoutError, CheckoutProvider, CheckoutStatus, checkout_register, url_origin
from ..models import PaymentOrder

KEY_ID = "konnect"
# The currencies Konnect takes ("token"); amounts are in their minor unit.
TOKENS = frozenset({"TND", "EUR", "USD"})
PAYMENT_METHODS = frozenset({"wallet", "bank_card", "e-DINAR"})
# Konnect's paymentRef is a 24-hex object id; anything of this shape is accepted,
# nothing that could change the path of the status request or be stored oddly.
PAYMENT_REF = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Konnect's answers are small; a larger body is not Konnect's.
MAX_ANSWER_BYTES = 256 * 1024
DESCRIPTION_MAX = 255


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry our API key to wherever it points: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise CheckoutError(f"Konnect answered a redirect ({code}) to {newurl[:200]}")


_opener = urllib.request.build_opener(_NoRedirect)


class KonnectClient:
    """The two calls Selfcare makes, over urllib (no dependency), with a timeout.
    Every failure is a CheckoutError with a reason: unreachable, a non-2xx answer,
    a body that is not a JSON object."""

    def __init__(self, *, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def init_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/api/v2/payments/init-payment", body)

    def payment_get(self, payment_ref: str) -> dict[str, Any]:
        if not PAYMENT_REF.fullmatch(payment_ref):
            raise CheckoutError("not a Konnect payment reference")
        return self._call("GET", f"/api/v2/payments/{quote(payment_ref, safe='')}")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(  # noqa: S310 - the base URL is a setting (https outside DEBUG)
            self.base_url + path,
            data=data,
            method=method,
            headers={"x-api-key": self.api_key, "Accept": "application/json", "Content-Type": "application/json"},
        )
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            detail = _errors(error.read(4096))
            raise CheckoutError(f"Konnect answered {error.code} to {method} {path}: {detail}") from None
        except (OSError, ValueError) as error:  # URLError, timeouts, refused or reset connections
            raise CheckoutError(f"Konnect unreachable ({method} {path}): {error}") from None
        if not 200 <= status < 300:
            raise CheckoutError(f"Konnect answered {status} to {method} {path}")
        if len(raw) > MAX_ANSWER_BYTES:
            raise CheckoutError(f"Konnect's answer to {method} {path} is too large")
        try:
            answer = json_body_parse(raw)
        except HostileInput as error:
            raise CheckoutError(f"Konnect's answer to {method} {path} is not JSON: {error}") from None
        if not isinstance(answer, dict):
            raise CheckoutError(f"Konnect's answer to {method} {path} is not a JSON object")
        return answer


def _errors(raw: bytes) -> str:
    """Konnect's `errors` from an error answer, short, for the log and the order's error."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    errors = body.get("errors", body) if isinstance(body, dict) else body
    return json.dumps(errors, ensure_ascii=False)[:200]


def konnect_client() -> KonnectClient:
    return KonnectClient(
        base_url=settings.KONNECT_API_URL, api_key=settings.KONNECT_API_KEY, timeout=settings.KONNECT_TIMEOUT
    )


def pay_origins() -> list[str]:
    """Where Konnect may send the payer: KONNECT_PAY_ORIGINS and the API's own origin."""
    return sorted({url_origin(o) for o in settings.KONNECT_PAY_ORIGINS} | {url_origin(settings.KONNECT_API_URL)})


def _pay_url_ok(value: Any) -> bool:
    """An address on one of Konnect's origins: we send the subscriber there, so
    nothing else (another host, `javascript:`) is ever passed on."""
    if not isinstance(value, str) or len(value) > 1000:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc) and url_origin(value) in pay_origins()


def _timestamp(value: Any) -> dt.datetime | None:
    """Konnect's ISO 8601 times (`2025-10-01T12:00:00.000Z`); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else None


@checkout_register(KEY_ID)
class KonnectCheckout(CheckoutProvider):
    @classmethod
    def available(cls) -> bool:
        return bool(settings.KONNECT_API_KEY and settings.KONNECT_WALLET_ID) and settings.SELFCARE_CURRENCY in TOKENS

    def start(self, order: PaymentOrder, *, return_url: str) -> str:
        if not self.available():
            raise CheckoutError("Konnect is not configured here (KONNECT_API_KEY, KONNECT_WALLET_ID, currency)")
        origin = urlsplit(return_url)
        # Konnect must reach the webhook: it is on the host the subscriber is using.
        webhook = f"{origin.scheme}://{origin.netloc}{reverse('konnect_webhook')}"
        # Konnect's lifespan ends no later than our order, so it rarely takes a
        # payment for an order we have given up on (orders_poll catches those that
        # come anyway).
        minutes_left = int((order.expires_at - timezone.now()).total_seconds() // 60)
        description = _("%(operator)s: payment %(reference)s, account %(account)s") % {
            "operator": settings.SELFCARE_OPERATOR_NAME,
            "reference": order.reference,
            "account": order.account.display_number,
        }
        body = {
            "receiverWalletId": settings.KONNECT_WALLET_ID,
            "token": order.currency,
            "amount": to_minor_units(order.amount, order.currency),
            "type": "immediate",
            "description": description[:DESCRIPTION_MAX],
            "acceptedPaymentMethods": [m for m in settings.KONNECT_PAYMENT_METHODS if m in PAYMENT_METHODS],
            "lifespan": max(1, minutes_left),
            "checkoutForm": False,
            # The subscriber pays what they owe; the gateway's fee is the operator's.
            "addPaymentFeesToAmount": False,
            "orderId": order.reference,
            "webhook": webhook,
            "successUrl": return_url,
            # The result page asks Konnect itself: a payment left unfinished stays
            # open there (Konnect has no "cancelled"), and the customer may go back.
            "failUrl": return_url,
            "theme": "light",
        }
        # No name, phone or e-mail: Konnect's own page asks the payer what it needs.
        answer = konnect_client().init_payment(body)
        pay_url, payment_ref = answer.get("payUrl"), answer.get("paymentRef")
        if not isinstance(payment_ref, str) or not PAYMENT_REF.fullmatch(payment_ref):
            raise CheckoutError("Konnect's init-payment answer has no usable paymentRef")
        if not _pay_url_ok(pay_url):
            raise CheckoutError(
                f"Konnect's payUrl is not on its origins ({', '.join(pay_origins())}): {pay_url!r:.120}"
            )
        order.provider_ref = payment_ref
        return pay_url

    def checkout_origins(self) -> list[str]:
        return pay_origins()

    def fetch_status(self, order: PaymentOrder) -> CheckoutStatus:
        if not self.available():
            raise CheckoutError("Konnect is not configured here (KONNECT_API_KEY, KONNECT_WALLET_ID, currency)")
        if not order.provider_ref:
            raise CheckoutError("this order was never opened at Konnect (no paymentRef)")
        payment = konnect_client().payment_get(order.provider_ref).get("payment")
        if not isinstance(payment, dict):
            raise CheckoutError("Konnect's payment answer has no payment object")
        # The paymentRef we stored is Konnect's; the order id proves the payment is
        # the one opened for this order and not another one's.
        if payment.get("orderId") != order.reference:
            raise CheckoutError(f"Konnect's payment {order.provider_ref} is for another order")
        status = payment.get("status")
        if status == "completed":
            token, units = payment.get("token", order.currency), payment.get("amount")
            if token != order.currency:
                raise CheckoutError(f"Konnect's payment is in {str(token)[:8]!r}, the order in {order.currency}")
            try:
                amount = from_minor_units(units, order.currency)  # type: ignore[arg-type]
            except ValueError:
                raise CheckoutError(f"Konnect's completed payment has no usable amount: {units!r:.40}") from None
            if amount <= 0:
                raise CheckoutError("Konnect's completed payment has no amount")
            # What Konnect reports is what is applied; order_complete marks the order
            # failed if it is not what was asked (the money is the customer's either way).
            return CheckoutStatus(
                status=PaymentOrder.Status.PAID,
                amount=amount,
                paid_at=_timestamp(payment.get("updatedAt")),
                detail="completed at Konnect",
            )
        if status == "expired":
            return CheckoutStatus(status=PaymentOrder.Status.EXPIRED, detail="expired at Konnect")
        # "pending" (not paid yet, or a card refused: the customer may try again), or
        # a status this adapter does not know: never read as an outcome.
        return CheckoutStatus(status=PaymentOrder.Status.PENDING, detail=f"Konnect says {str(status)[:40]}")
