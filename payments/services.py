"""Writes of payments: apply a provider's payment once, reverse it, manage providers.

`payment_apply` is the one way money reaches an account, whoever reports it: the
signed bank API, a wallet's poller or webhook, an agency counter (a provider of
kind `counter`). Its idempotency is the (provider, reference) unique constraint,
not a prior lookup, so two copies of a request racing each other apply once.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Agency
from billing.dunning import dunning_account_settle
from billing.messages import PAYMENT_RECEIVED
from billing.models import MONEY, Bill, ServiceAccount
from billing.services import BILL_PAID_FIELDS, allocation_plan, bills_paid_write
from core.audit import audit_saves
from core.exceptions import ApplicationError
from core.models import sequence_nextval
from core.money import Money, UnknownCurrency, currency_exponent
from core.sql import fetch_all, insert_returning
from notifications.services import notify

from . import locks
from .crypto import secret_generate, secret_seal
from .models import Allocation, Payment, Provider
from .selectors import payment_data

# A PostgreSQL SEQUENCE (payments migration 0003): receipt numbers are unique and
# increasing, with gaps where a payment rolled back (README "Receipt numbers").
RECEIPT_SEQUENCE = "payment_receipt"
# A money column holds less than this (14 digits, 3 of them decimals).
AMOUNT_LIMIT = Decimal(10) ** (MONEY["max_digits"] - MONEY["decimal_places"])
_NUMBER = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?")


class AccountNotFound(ApplicationError):
    code = "account_not_found"


class AccountClosed(ApplicationError):
    code = "account_closed"


class BillMismatch(ApplicationError):
    code = "bill_mismatch"


class InvalidAmount(ApplicationError):
    code = "invalid_amount"


class CurrencyMismatch(ApplicationError):
    code = "currency_mismatch"


class ReferenceConflict(ApplicationError):
    code = "reference_conflict"


class PaymentNotFound(ApplicationError):
    code = "payment_not_found"


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    # False for a replay (the same request again) and for a reversal already made.
    created: bool
    # The answer to give: the first answer itself for a replay.
    response: dict[str, Any]


# --- Amounts ---------------------------------------------------------------


def amount_parse(value: Any, *, currency: str) -> Decimal:
    """A payment amount from its decimal string: positive, plain digits, no more
    decimals than `currency` has. Anything else raises InvalidAmount.

    Strings only: a JSON number has already been through a float somewhere, and
    "1e3", "NaN", "Infinity", " 12" or "12." are not what a bank means to send.
    """
    exponent = currency_exponent(currency)
    if not isinstance(value, str) or len(value) > 32:
        raise InvalidAmount('The amount must be a decimal string such as "12.500".')
    whole, dot, frac = value.partition(".")
    if not whole.isascii() or not whole.isdigit() or (dot and not (frac.isascii() and frac.isdigit())):
        raise InvalidAmount('The amount must be a decimal string such as "12.500".')
    if len(frac) > exponent:
        raise InvalidAmount(
            f"{currency} has {exponent} decimals; the amount has {len(frac)}.", extra={"decimals": exponent}
        )
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the digits were checked above
        raise InvalidAmount("The amount is not a number.") from None
    if amount <= 0:
        raise InvalidAmount("The amount must be more than zero.")
    if amount >= AMOUNT_LIMIT:
        raise InvalidAmount("The amount is too large.")
    return amount


def _amount_check(amount: Decimal, *, currency: str) -> Decimal:
    """The same rules for callers that already hold a Decimal (a counter payment)."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmount("The amount must be a decimal number.")
    exponent = currency_exponent(currency)
    if amount.as_tuple().exponent < -exponent and amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise InvalidAmount(f"{currency} has {exponent} decimals.", extra={"decimals": exponent})
    if amount <= 0:
        raise InvalidAmount("The amount must be more than zero.")
    if amount >= AMOUNT_LIMIT:
        raise InvalidAmount("The amount is too large.")
    return amount.quantize(Decimal(1).scaleb(-exponent))


def amount_example(currency: str) -> str:
    """An amount written the way `amount_parse` wants it: "12.500" in TND, "12" in XOF."""
    exponent = currency_exponent(currency)
    return "12" + ("." + "5".ljust(exponent, "0") if exponent else "")


def amount_error_text(value: str, *, currency: str, error: InvalidAmount) -> str:
    """What was wrong with `value`, in the page's language, for a person (a
    clerk's form, a settlement file's line). The verdict is `amount_parse`'s;
    this only says it in words."""
    example = amount_example(currency)
    if "decimals" in error.extra:
        if not error.extra["decimals"]:
            return _("%(currency)s has no decimals: enter a whole amount such as %(example)s.") % {
                "currency": currency, "example": example,
            }  # fmt: skip
        return _("%(currency)s amounts have at most %(decimals)d decimals, such as %(example)s.") % {
            "currency": currency, "decimals": error.extra["decimals"], "example": example,
        }  # fmt: skip
    if _NUMBER.fullmatch(value):
        number = Decimal(value)
        if number < 0:
            return _("The amount cannot be negative.")
        if number == 0:
            return _("The amount must be more than zero.")
        return _("The amount is too large.")
    return _("Enter an amount such as %(example)s.") % {"example": example}


def currency_check(currency: str) -> str:
    """Accounts are billed in the operator's currency; a payment must be in it too."""
    expected = settings.SELFCARE_CURRENCY
    if currency != expected:
        raise CurrencyMismatch(
            f"This account is billed in {expected}.", extra={"expected": expected, "received": str(currency)[:8]}
        )
    try:
        currency_exponent(currency)
    except UnknownCurrency:  # pragma: no cover - settings name a known currency
        raise CurrencyMismatch(f"Unsupported currency {currency!r}.") from None
    return currency


# --- Applying --------------------------------------------------------------


def _fingerprint(**fields: Any) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(payment: Payment, fingerprint: str) -> PaymentResult:
    if payment.fingerprint != fingerprint:
        raise ReferenceConflict(
            "This reference was already used for another payment.", extra={"reference": payment.reference}
        )
    return PaymentResult(payment=payment, created=False, response=json.loads(payment.response))


def payment_apply(
    *,
    provider: Provider,
    reference: str,
    account_number: str,
    amount: Decimal,
    currency: str,
    paid_at: dt.datetime,
    bill_number: str | None = None,
    channel: str = "",
) -> PaymentResult:
    """Apply a payment once: to the named bill, else to the oldest open bills;
    what no bill needs becomes the account's credit (money that has left a
    customer's bank is never refused for being too much).

    The same (provider, reference) with the same fields returns the first
    result unchanged; with any other field it raises ReferenceConflict and
    changes nothing. A "payment received" message is written to the outbox in
    the same transaction.
    """
    currency = currency_check(currency)
    amount = _amount_check(amount, currency=currency)
    if timezone.is_naive(paid_at):
        raise ApplicationError("paid_at needs a UTC offset.", code="validation_error")
    fingerprint = _fingerprint(
        reference=reference, account_number=account_number, bill_number=bill_number or "",
        amount=f"{amount:f}", currency=currency, paid_at=paid_at.astimezone(dt.UTC).isoformat(), channel=channel,
    )  # fmt: skip
    # No look-up before the transaction: a replay is found under the account lock
    # like a new payment (one query fewer for the usual case, a new payment).
    try:
        with transaction.atomic():
            return _apply(
                provider=provider, reference=reference, account_number=account_number, bill_number=bill_number,
                amount=amount, currency=currency, paid_at=paid_at, channel=channel, fingerprint=fingerprint,
            )  # fmt: skip
    except IntegrityError:
        # A concurrent copy inserted the reference first (Kill Bill #639): its
        # result is the answer, once it has committed.
        existing = Payment.objects.filter(provider=provider, reference=reference).select_related("account").first()
        if existing is None:
            raise
        return _replay(existing, fingerprint)


# Under the account lock (see _apply); plain SQL, as the locks (payments.locks).
_PAYMENT_EXISTS_SQL = f"SELECT id FROM {Payment._meta.db_table} WHERE provider_id = %s AND reference = %s"
_CREDIT_ADD_SQL = f"UPDATE {ServiceAccount._meta.db_table} SET credit = credit + %s WHERE id = %s"


def _apply(
    *,
    provider: Provider,
    reference: str,
    account_number: str,
    bill_number: str | None,
    amount: Decimal,
    currency: str,
    paid_at: dt.datetime,
    channel: str,
    fingerprint: str,
) -> PaymentResult:
    account = locks.account_lock(number=account_number)
    # Under the account lock a concurrent copy has committed or not started (this
    # statement's snapshot is taken after the lock: never fold it into the lock's).
    found = fetch_all(_PAYMENT_EXISTS_SQL, [provider.pk, reference])
    if found:
        return _replay(Payment.objects.select_related("account").get(pk=found[0][0]), fingerprint)
    if account is None:
        raise AccountNotFound("No account has this number.", extra={"account_number": account_number})
    if account.status == ServiceAccount.Status.CLOSED:
        raise AccountClosed("This account is closed.", extra={"account_number": account_number})
    named = None
    if bill_number:
        named = Bill.objects.filter(number=bill_number, account=account).first()
        if named is None:
            raise BillMismatch("This bill is not one of this account's.", extra={"bill_number": bill_number})
    bills = locks.bills_open_lock(account=account)
    if named is not None:
        bills = sorted(bills, key=lambda b: b.pk != named.pk)  # the named bill first, then the oldest

    plan, left = allocation_plan(bills=bills, amount=amount)
    for bill, _part in plan:
        bill.account = account  # the row locked above, with its subscriber: the audit scope reads no more

    payment = Payment(
        provider=provider, reference=reference, account=account, bill=named, amount=amount, currency=currency,
        credit=left, paid_at=paid_at, channel=channel, status=Payment.Status.APPLIED,
        receipt_number=f"R{sequence_nextval(RECEIPT_SEQUENCE):09d}", fingerprint=fingerprint,
    )  # fmt: skip
    allocations = [Allocation(payment=payment, bill=bill, amount=part) for bill, part in plan]
    payment.response = json.dumps(payment_data(payment=payment, allocations=allocations), ensure_ascii=False)
    # Written without a save() each (a statement per table), and audited as
    # auditlog would have audited each save, in one more statement.
    insert_returning(Payment, [payment])
    # A new payment has no order nor counter record yet (those reverse one-to-ones
    # come after it): said here, so that the audit diff does not query for them.
    for relation in Payment._meta.related_objects:
        if relation.one_to_one:
            relation.set_cached_value(payment, None)
    insert_returning(Allocation, allocations)
    bills_before = [copy.copy(bill) for bill, _ in plan]
    for bill, part in plan:
        bill.set_amount_paid(bill.amount_paid + part)
    bills_paid_write(bills=[bill for bill, _ in plan])
    account_before = copy.copy(account)
    if left:
        with connection.cursor() as cursor:
            cursor.execute(_CREDIT_ADD_SQL, [left, account.pk])
        account.credit += left
    audit_saves(
        created=[payment, *allocations],
        updated=[
            *((before, bill, BILL_PAID_FIELDS) for before, (bill, _) in zip(bills_before, plan, strict=True)),
            (account_before, account, ["credit"]),
        ],
    )

    # Nothing overdue left: the field team's disconnection is cancelled, or its
    # reconnection ordered, in this transaction (under the account lock).
    if plan:
        dunning_account_settle(account=account)
    remaining = sum((b.amount_due for b in bills), Decimal(0))
    notify(
        event=PAYMENT_RECEIVED,
        subscriber=account.subscriber,
        object_key=payment.receipt_number,
        reference=account.number,
        context={
            "amount": Money(amount, currency),
            "account": account.number,
            "receipt": payment.receipt_number,
            "remaining": Money(remaining, currency),
        },
    )
    # The stored text read back, as a replay gets it (plain strings, not the enum).
    return PaymentResult(payment=payment, created=True, response=json.loads(payment.response))


# --- Reversing -------------------------------------------------------------


def payment_reverse(*, provider: Provider, reference: str, reason: str) -> PaymentResult:
    """Undo a payment: its allocations leave the bills (which reopen), its credit
    leaves the account. Reversing a reversed payment changes nothing.

    Reopened bills past their due date are flagged overdue by the hourly sweep,
    which also sends the notice.
    """
    row = Payment.objects.filter(provider=provider, reference=reference).values("account_id").first()
    if row is None:
        raise PaymentNotFound("No payment of yours has this reference.", extra={"reference": reference})
    with transaction.atomic():
        account = locks.account_lock_by_id(account_id=row["account_id"])
        payment = locks.payment_lock(provider=provider, reference=reference)
        assert payment is not None  # payments are never deleted (PROTECT everywhere)
        payment.account = account
        if payment.status == Payment.Status.REVERSED:
            return PaymentResult(payment=payment, created=False, response=payment_data(payment=payment))
        allocations = list(payment.allocations.order_by("pk"))
        bills = locks.bills_lock(ids=[a.bill_id for a in allocations])
        for allocation in allocations:
            bill = bills[allocation.bill_id]
            bill.set_amount_paid(bill.amount_paid - allocation.amount)
            bill.save(update_fields=["amount_paid", "amount_due", "status"])
        if payment.credit:
            _credit_take_back(account=account, amount=payment.credit)
        payment.status = Payment.Status.REVERSED
        payment.reversed_at = timezone.now()
        payment.reversal_reason = reason[:200]
        payment.save(update_fields=["status", "reversed_at", "reversal_reason"])
    return PaymentResult(payment=payment, created=True, response=payment_data(payment=payment))


def _credit_take_back(*, account: ServiceAccount, amount: Decimal) -> None:
    """Remove `amount` of credit; what later bills already used is taken back
    from them, newest first (the account lock is held)."""
    from_credit = min(account.credit, amount)
    ServiceAccount.objects.filter(pk=account.pk).update(credit=F("credit") - from_credit)
    account.credit -= from_credit
    short = amount - from_credit
    if not short:
        return
    # What each bill holds beyond its allocations from applied payments came from credit.
    allocated = dict(
        Allocation.objects.filter(bill__account=account, payment__status=Payment.Status.APPLIED)
        .values("bill_id")
        .annotate(total=Sum("amount"))
        .values_list("bill_id", "total")
    )
    paid = (
        Bill.objects.filter(account=account, amount_paid__gt=0).order_by("-period", "-pk").values_list("pk", flat=True)
    )
    bills = locks.bills_lock(ids=list(paid))
    for bill in sorted(bills.values(), key=lambda b: (b.period, b.pk), reverse=True):
        if not short:
            break
        by_credit = bill.amount_paid - allocated.get(bill.pk, Decimal(0))
        take = min(short, max(by_credit, Decimal(0)))
        if take:
            bill.set_amount_paid(bill.amount_paid - take)
            bill.save(update_fields=["amount_paid", "amount_due", "status"])
            short -= take


# --- Providers -------------------------------------------------------------


def provider_create(
    *, name: str, kind: str, key_id: str, is_active: bool = True, agency: Agency | None = None
) -> tuple[Provider, str]:
    """A new provider and its signing secret, returned this once and stored sealed.
    An agency counter names its agency (payments.counter creates those)."""
    secret = secret_generate()
    provider = Provider.objects.create(
        name=name, kind=kind, key_id=key_id, is_active=is_active, agency=agency,
        secret_sealed=secret_seal(secret, key_id=key_id),
    )  # fmt: skip
    return provider, secret


def provider_secret_rotate(*, provider: Provider) -> str:
    """Issue a new secret; the current one keeps signing until the rotation ends,
    so the provider can switch without a window of refused payments."""
    secret = secret_generate()
    Provider.objects.filter(pk=provider.pk).update(
        previous_secret_sealed=F("secret_sealed"), secret_sealed=secret_seal(secret, key_id=provider.key_id)
    )
    provider.refresh_from_db(fields=["secret_sealed", "previous_secret_sealed"])
    return secret


def provider_rotation_end(*, provider: Provider) -> bool:
    """The previous secret stops signing; returns False if no rotation was under way."""
    return bool(
        Provider.objects.filter(pk=provider.pk).exclude(previous_secret_sealed="").update(previous_secret_sealed="")
    )


def provider_secret_set(*, provider: Provider, secret: str) -> None:
    """Set a known secret: the demo's sandbox bank only (its secret is published)."""
    Provider.objects.filter(pk=provider.pk).update(
        secret_sealed=secret_seal(secret, key_id=provider.key_id), previous_secret_sealed=""
    )
