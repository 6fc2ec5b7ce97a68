"""The sandbox bank's checkout (the `sandbox_bank` app, mounted at /sandbox-bank/).

Like a real bank it reports the payment itself, through the signed
`POST /api/v1/payments` under the order's reference; so its status is simply
whether that Payment has arrived.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings

from ..checkout import CheckoutProvider, CheckoutStatus, checkout_register, url_origin
from ..models import Payment, PaymentOrder
from ..selectors import money_str


@checkout_register("sandbox")
class SandboxCheckout(CheckoutProvider):
    def start(self, order: PaymentOrder, *, return_url: str) -> str:
        base = settings.SANDBOX_BANK_URL
        if not base:
            parts = urlsplit(return_url)
            base = f"{parts.scheme}://{parts.netloc}/sandbox-bank/"
        query = {
            "reference": order.reference,
            "account": order.account.number,
            "amount": money_str(order.amount, order.currency),
            "currency": order.currency,
            "expires": int(order.expires_at.timestamp()),
            "return": return_url,
        }
        if len(order.bill_numbers) == 1:
            query["bill"] = order.bill_numbers[0]
        return f"{base.rstrip('/')}/checkout/?{urlencode(query)}"

    def checkout_origins(self) -> list[str]:
        # Empty: /sandbox-bank/ on our own host, which the page's policy already allows.
        return [url_origin(settings.SANDBOX_BANK_URL)] if settings.SANDBOX_BANK_URL else []

    def fetch_status(self, order: PaymentOrder) -> CheckoutStatus:
        payment = Payment.objects.filter(provider=self.provider, reference=order.reference).first()
        if payment is None:
            return CheckoutStatus(status=PaymentOrder.Status.PENDING)
        return CheckoutStatus(status=PaymentOrder.Status.PAID, amount=payment.amount, paid_at=payment.paid_at)
