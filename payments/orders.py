"""Writes of payment orders: a subscriber's checkout at a provider, from creation
to the Payment it ends in (or its expiry).

The order's `reference` is the Payment's reference at its provider, so
`payment_apply`'s (provider, reference) constraint makes completion idempotent:
the redirect, a webhook and the poller racing each other apply the money once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Subscriber
from billing.models import Bill, ServiceAccount
from core.exceptions import ApplicationError
from core.money import currency_exponent

from .checkout import CheckoutStatus, checkout_for
from .models import Payment, PaymentOrder, Provider
from .services import AccountClosed, InvalidAmount, ReferenceConflict, _amount_check, payment_apply


class OrderError(ApplicationError):
    code = "order_invalid"


def order_reference_new() -> str:
    """`PO` + 20 hex digits: unguessable, and within every provider's id alphabet."""
    return "PO" + secrets.token_hex(10).upper()


def order_ttl() -> dt.timedelta:
    return dt.timedelta(seconds=settings.SELFCARE_PAYMENT_ORDER_TTL)


def order_create(
    *,
    subscriber: Subscriber,
    account: ServiceAccount,
    provider: Provider,
    bills: list[Bill] | None = None,
    amount: Decimal | None = None,
) -> PaymentOrder:
    """A new order for the chosen bills (their total) or for an amount. The caller
    has checked that `account` and `bills` belong to `subscriber` (a 404 otherwise)."""
    if account.subscriber_id != subscriber.pk:
        raise OrderError(_("This account is not yours."))
    if account.status == ServiceAccount.Status.CLOSED:
        raise AccountClosed(_("This account is closed."))
    if not provider.is_active or checkout_for(provider) is None:
        raise OrderError(_("This provider cannot take payments here."))
    currency = settings.SELFCARE_CURRENCY
    bills = bills or []
    if bills:
        if any(b.account_id != account.pk for b in bills):
            raise OrderError(_("These bills are not all on this account."))
        open_bills = [b for b in bills if b.status in Bill.OPEN_STATUSES and b.amount_due > 0]
        if len(open_bills) != len(bills):
            raise OrderError(_("One of these bills has nothing left to pay."))
        amount = sum((b.amount_due for b in bills), Decimal(0))
    elif amount is None:
        raise InvalidAmount(_("Choose bills or enter an amount."))
    if not amount.is_finite():
        raise InvalidAmount(_("Enter an amount more than zero and less than a billion."))
    if amount.as_tuple().exponent < -currency_exponent(currency):
        raise InvalidAmount(_("Too many decimals for %(currency)s.") % {"currency": currency})
    try:
        amount = _amount_check(amount, currency=currency)
    except InvalidAmount:
        raise InvalidAmount(_("Enter an amount more than zero and less than a billion.")) from None
    return PaymentOrder.objects.create(
        subscriber=subscriber,
        account=account,
        provider=provider,
        bill_numbers=sorted(b.number for b in bills),
        reference=order_reference_new(),
        amount=amount,
        currency=currency,
        expires_at=timezone.now() + order_ttl(),
    )


def order_start(*, order: PaymentOrder, return_url: str) -> str:
    """Open the checkout at the provider; returns the address to send the subscriber to."""
    adapter = checkout_for(order.provider)
    if adapter is None:
        raise OrderError(_("This provider cannot take payments here."))
    url = adapter.start(order, return_url=return_url)
    PaymentOrder.objects.filter(pk=order.pk, status=PaymentOrder.Status.CREATED).update(
        status=PaymentOrder.Status.PENDING, pay_url=url, provider_ref=order.provider_ref, updated_at=timezone.now()
    )
    order.refresh_from_db()
    return url


def order_complete(
    *, order: PaymentOrder, amount: Decimal | None = None, paid_at: dt.datetime | None = None
) -> PaymentOrder:
    """The provider says the order is paid: apply the payment (once) and mark the order paid.

    If the provider already reported the payment through the bank API (the sandbox
    bank does), that Payment is adopted; otherwise it is applied here through
    `payment_apply` under the order's reference. Calling it again, or from a
    racing webhook/poller/redirect, changes nothing more.
    """
    with transaction.atomic():
        order = PaymentOrder.objects.select_for_update().select_related("account", "provider").get(pk=order.pk)
        if order.status == PaymentOrder.Status.PAID:
            return order
        payment = Payment.objects.filter(provider=order.provider, reference=order.reference).first()
        if payment is None:
            bill_number = order.bill_numbers[0] if len(order.bill_numbers) == 1 else None
            try:
                payment = payment_apply(
                    provider=order.provider, reference=order.reference, account_number=order.account.number,
                    amount=amount if amount is not None else order.amount, currency=order.currency,
                    paid_at=paid_at or order.created_at, bill_number=bill_number, channel="checkout",
                ).payment  # fmt: skip
            except ReferenceConflict:
                payment = Payment.objects.get(provider=order.provider, reference=order.reference)
        order.payment = payment
        if payment.account_id != order.account_id or payment.amount != order.amount:
            # Money did arrive (it is applied as the provider said); the order itself
            # did not go as asked, so staff see it rather than a "paid".
            order.status = PaymentOrder.Status.FAILED
            order.error = "paid amount or account differs from the order"
        else:
            order.status = PaymentOrder.Status.PAID
            order.error = ""
        order.save(update_fields=["payment", "status", "error", "updated_at"])
        return order


def order_fail(*, order: PaymentOrder, status: str = PaymentOrder.Status.FAILED, error: str = "") -> bool:
    """An open order ends without payment (failed, cancelled, expired); False if it was no longer open."""
    return bool(
        PaymentOrder.objects.filter(pk=order.pk, status__in=PaymentOrder.OPEN_STATUSES, payment__isnull=True).update(
            status=status, error=error[:200], updated_at=timezone.now()
        )
    )


def order_refresh(*, order: PaymentOrder) -> PaymentOrder:
    """Bring an open order up to date: ask the provider, complete or end it, expire it
    when its time is up. Called when the order is read and by the periodic task."""
    if not order.is_open:
        return order
    adapter = checkout_for(order.provider)
    status: CheckoutStatus | None = None
    if adapter is not None and order.status == PaymentOrder.Status.PENDING:
        try:
            status = adapter.fetch_status(order)
        except Exception:  # a provider down must not break the page; the poller retries
            status = None
    if status is not None and status.status == PaymentOrder.Status.PAID:
        return order_complete(order=order, amount=status.amount, paid_at=status.paid_at)
    if status is not None and status.status in (
        PaymentOrder.Status.FAILED, PaymentOrder.Status.CANCELLED, PaymentOrder.Status.EXPIRED,
    ):  # fmt: skip
        order_fail(order=order, status=status.status, error=status.detail)
    elif order.expires_at <= timezone.now():
        order_fail(order=order, status=PaymentOrder.Status.EXPIRED)
    order.refresh_from_db()
    return order


def orders_expire(*, now: dt.datetime | None = None) -> int:
    """Refresh every open order whose time is up (a late "paid" still wins); returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for order in PaymentOrder.objects.filter(status__in=PaymentOrder.OPEN_STATUSES, expires_at__lte=now):
        if not order_refresh(order=order).is_open:
            ended += 1
    return ended
