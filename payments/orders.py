"""Writes of payment orders: a subscriber's checkout at a provider, from creation
to the Payment it ends in (or its expiry).

The order's `reference` is the Payment's reference at its provider, so
`payment_apply`'s (provider, reference) constraint makes completion idempotent:
the redirect, a webhook and the poller racing each other apply the money once.

Nothing a caller says is taken as the order's outcome: a webhook, the poller
and the result page all end in `_status_apply` with what the provider itself
answered (`CheckoutProvider.fetch_status`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Subscriber
from billing.models import Bill, ServiceAccount
from core.exceptions import ApplicationError
from core.money import currency_exponent

from .checkout import CheckoutError, CheckoutStatus, checkout_for, checkout_supported
from .models import Payment, PaymentOrder, Provider
from .services import AccountClosed, InvalidAmount, ReferenceConflict, _amount_check, payment_apply

logger = logging.getLogger(__name__)


class OrderError(ApplicationError):
    code = "order_invalid"


class ProviderUnavailable(ApplicationError):
    code = "provider_unavailable"


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
    if not provider.is_active or not checkout_supported(provider):
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
    """Open the checkout at the provider; returns the address to send the subscriber to.

    A provider that cannot be reached or refuses the order ends it as failed (no
    checkout was opened, so nothing can be paid on it) and raises ProviderUnavailable.
    """
    adapter = checkout_for(order.provider)
    if adapter is None:
        raise OrderError(_("This provider cannot take payments here."))
    try:
        url = adapter.start(order, return_url=return_url)
    except CheckoutError as exc:
        logger.warning("checkout %s at %s could not start: %s", order.reference, order.provider.key_id, exc)
        order_fail(order=order, error=f"could not start: {exc}")
        raise ProviderUnavailable(
            _("%(provider)s cannot be reached at the moment: nothing was taken. Try again in a few minutes.")
            % {"provider": order.provider.name}
        ) from exc
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


def _provider_status(order: PaymentOrder) -> CheckoutStatus:
    """What the provider says about the order; raises CheckoutError if it cannot say."""
    adapter = checkout_for(order.provider)
    if adapter is None:
        raise CheckoutError(f"no checkout adapter serves provider {order.provider.key_id!r}")
    try:
        return adapter.fetch_status(order)
    finally:
        # Asked, answered or not: the poller moves on to the others, so one order the
        # provider keeps failing on never holds the head of its queue.
        PaymentOrder.objects.filter(pk=order.pk).update(checked_at=timezone.now())


def _status_apply(order: PaymentOrder, status: CheckoutStatus | None) -> PaymentOrder:
    """Act on the provider's answer (None: no answer). A "paid" completes the order
    whatever its state (a late payment after expiry too); an open order may end."""
    if status is not None and status.status == PaymentOrder.Status.PAID:
        try:
            return order_complete(order=order, amount=status.amount, paid_at=status.paid_at)
        except ApplicationError as exc:
            # Paid at the provider but refused here (the account was closed since):
            # the money is in the operator's wallet, so staff must see it. The order
            # keeps the reason, and the late check keeps asking while staff decide.
            logger.error("order %s paid at %s but not applied: %s", order.reference, order.provider.key_id, exc)
            error = f"paid at the provider but not applied: {exc.code}: {exc.message}"[:200]
            PaymentOrder.objects.filter(pk=order.pk, payment__isnull=True).update(
                status=Case(
                    When(status__in=PaymentOrder.OPEN_STATUSES, then=Value(PaymentOrder.Status.FAILED)),
                    default=F("status"),
                ),
                error=error,
                updated_at=timezone.now(),
            )
            order.refresh_from_db()
            return order
    if order.is_open:
        if status is not None and status.status in PaymentOrder.ENDED_UNPAID_STATUSES:
            order_fail(order=order, status=status.status, error=status.detail)
        elif order.expires_at <= timezone.now():
            order_fail(order=order, status=PaymentOrder.Status.EXPIRED)
    order.refresh_from_db()
    return order


def order_late_check_due(*, order: PaymentOrder, now: dt.datetime | None = None) -> bool:
    """An order that ended unpaid, opened at a provider that may still complete it
    (it has the provider's reference) within the late window: ask again."""
    now = now or timezone.now()
    window = dt.timedelta(seconds=settings.SELFCARE_PAYMENT_ORDER_LATE_WINDOW)
    return (
        order.status in PaymentOrder.ENDED_UNPAID_STATUSES
        and order.payment_id is None
        and bool(order.provider_ref)
        and order.expires_at >= now - window
    )


def order_refresh(*, order: PaymentOrder) -> PaymentOrder:
    """Bring an order up to date when the subscriber reads it: as `order_sync`, but
    a provider that cannot be reached leaves it as it is (the poller asks again)
    and an open order still expires when its time is up.

    That includes an order that ended unpaid lately: a wallet sends the customer
    back here right after a payment it took past our expiry, and they must see it
    paid, not "nothing was taken"."""
    try:
        return order_sync(order=order)
    except Exception as exc:  # a provider down must not break the page
        logger.warning("order %s: %s could not be asked: %s", order.reference, order.provider.key_id, exc)
    return _status_apply(order, None)


def order_sync(*, order: PaymentOrder) -> PaymentOrder:
    """Ask the provider about an order now and act on its answer: what a wallet's
    webhook (only a trigger: it carries no proof) and the poller call.

    An order waiting for its provider is completed or ended as the provider says,
    and expires when its time is up. One that ended unpaid
    within SELFCARE_PAYMENT_ORDER_LATE_WINDOW is asked too, so a payment the
    customer made after we gave up on the order is still applied: money that has
    left a wallet is never lost. A paid order, or one past the window, is left
    alone without asking. Raises CheckoutError when the provider cannot be
    asked; nothing has changed then.
    """
    if order.status == PaymentOrder.Status.PENDING or order_late_check_due(order=order):
        return _status_apply(order, _provider_status(order))
    return _status_apply(order, None)  # an order never started only expires


def orders_poll(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic sweep of checkouts, for callbacks that never come.

    Orders waiting for their provider, least recently asked first, each at most
    once per SELFCARE_PAYMENT_ORDER_POLL_SECONDS; then orders that ended unpaid
    within the late window, each at most once per
    SELFCARE_PAYMENT_ORDER_LATE_CHECK_SECONDS. At most SELFCARE_PAYMENT_ORDER_POLL_BATCH
    of each per run. A provider that cannot be reached is skipped until the next
    run. Returns how many orders were asked, have their payment applied, could not
    be asked, and failed for another reason (logged).
    """
    now = now or timezone.now()
    batch = settings.SELFCARE_PAYMENT_ORDER_POLL_BATCH
    pending = PaymentOrder.objects.filter(
        Q(checked_at__isnull=True)
        | Q(checked_at__lte=now - dt.timedelta(seconds=settings.SELFCARE_PAYMENT_ORDER_POLL_SECONDS)),
        status=PaymentOrder.Status.PENDING,
    )
    late = PaymentOrder.objects.filter(
        Q(checked_at__isnull=True)
        | Q(checked_at__lte=now - dt.timedelta(seconds=settings.SELFCARE_PAYMENT_ORDER_LATE_CHECK_SECONDS)),
        status__in=PaymentOrder.ENDED_UNPAID_STATUSES,
        payment__isnull=True,
        provider_ref__isnull=False,
        expires_at__gte=now - dt.timedelta(seconds=settings.SELFCARE_PAYMENT_ORDER_LATE_WINDOW),
    )
    least_recent = (F("checked_at").asc(nulls_first=True), "pk")
    counts = {"asked": 0, "applied": 0, "unreachable": 0, "errors": 0}
    for queryset in (pending, late):
        for order in queryset.select_related("provider").order_by(*least_recent)[:batch]:
            try:
                order = order_sync(order=order)
            except CheckoutError as exc:
                logger.warning("order %s: %s could not be asked: %s", order.reference, order.provider.key_id, exc)
                counts["unreachable"] += 1
                continue
            except Exception:
                # One order's fault must not keep the others' money from being applied.
                logger.exception("order %s could not be polled", order.reference)
                counts["errors"] += 1
                continue
            counts["asked"] += 1
            counts["applied"] += order.payment_id is not None
    return counts


def orders_expire(*, now: dt.datetime | None = None) -> int:
    """Refresh every open order whose time is up (a late "paid" still wins); returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for order in PaymentOrder.objects.filter(status__in=PaymentOrder.OPEN_STATUSES, expires_at__lte=now):
        if not order_refresh(order=order).is_open:
            ended += 1
    return ended
