"""Payments taken at an agency counter: cash, cheque or card, recorded by a clerk.

Each agency's counter is a provider like a bank (kind `counter`, one per agency),
so a counter payment goes through the same `payment_apply` as the bank API: the
same allocation to the oldest bills, the same receipt numbers, the same "payment
received" message, and the same settlement import to reconcile it. The counter
never signs an API request: its secret is random, sealed, and never shown.

A counter payment is never edited. A mistake is corrected by a supervisor of the
agency, who reverses it (`payment_reverse`) with a reason; the clerk then records
the right one.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Agency, User
from accounts.selectors import staff_agency_ids
from billing.models import Bill, ServiceAccount
from core.audit import audit_as
from core.exceptions import ApplicationError

from . import locks
from .models import CounterPayment, Provider
from .services import (
    InvalidAmount,
    ReferenceConflict,
    _amount_check,
    amount_error_text,
    payment_apply,
    payment_reverse,
    provider_create,
)

RECORD_PERMISSION = "payments.add_counterpayment"
REVERSE_PERMISSION = "payments.reverse_counterpayment"
_CHEQUE_NUMBER = re.compile(r"[A-Za-z0-9 /-]{1,32}")
_CARD_DIGITS = re.compile(r"[0-9]{4}")
_CARD_AUTHORISATION = re.compile(r"[A-Za-z0-9]{1,32}")


class CounterPaymentRefused(ApplicationError):
    code = "counter_payment_refused"


# --- The agency's counter ------------------------------------------------------


def _counter_key_id(agency: Agency) -> str:
    code = re.sub(r"[^A-Za-z0-9_.-]", "-", agency.code)
    key_id = f"counter-{code}"
    if Provider.objects.filter(key_id=key_id).exclude(agency=agency).exists():
        key_id = f"counter-{agency.pk}-{code}"  # a bank took that name first
    return key_id[:64]


def counter_provider_for(*, agency: Agency) -> Provider:
    """The agency's counter provider, created with its first counter payment.

    One per agency (a unique constraint): two clerks taking the agency's very
    first payments at the same moment share the row the first one created.
    """
    provider = Provider.objects.filter(kind=Provider.Kind.COUNTER, agency=agency).first()
    if provider is not None:
        return provider
    key_id = _counter_key_id(agency)
    try:
        with transaction.atomic():
            # The secret is never shown: a counter does not sign API requests.
            provider, _secret = provider_create(
                name=f"{agency.code} · {agency.name_fr}"[:120], kind=Provider.Kind.COUNTER, key_id=key_id,
                agency=agency,
            )  # fmt: skip
            return provider
    except IntegrityError:
        provider = Provider.objects.filter(kind=Provider.Kind.COUNTER, agency=agency).first()
        if provider is None:
            raise
        return provider


# --- Recording ---------------------------------------------------------------


def counter_may_record(*, user: User, agency_id: int) -> bool:
    agency_ids = staff_agency_ids(user)
    return user.has_perm(RECORD_PERMISSION) and (agency_ids is None or agency_id in agency_ids)


def _details(
    *,
    method: str,
    amount: Decimal,
    currency: str,
    cheque_number: str,
    cheque_bank: str,
    card_last_digits: str,
    card_authorisation: str,
    amount_tendered: Decimal | None,
) -> dict:
    """The CounterPayment's fields of `method`; another method's details are refused."""
    cheque_number, cheque_bank = cheque_number.strip(), cheque_bank.strip()
    card_last_digits, card_authorisation = card_last_digits.strip(), card_authorisation.strip()
    if method not in CounterPayment.Method.values:
        raise CounterPaymentRefused(_("Choose cash, cheque or card."), code="method_unknown")
    if method != CounterPayment.Method.CHEQUE and (cheque_number or cheque_bank):
        raise CounterPaymentRefused(_("A cheque number and bank are for cheques only."), code="details_mismatch")
    if method != CounterPayment.Method.CARD and (card_last_digits or card_authorisation):
        raise CounterPaymentRefused(_("Card details are for card payments only."), code="details_mismatch")
    if method != CounterPayment.Method.CASH and amount_tendered is not None:
        raise CounterPaymentRefused(_("The amount tendered is for cash only."), code="details_mismatch")
    fields: dict = {"method": method}
    if method == CounterPayment.Method.CHEQUE:
        if not (cheque_number and cheque_bank):
            raise CounterPaymentRefused(_("A cheque needs its number and its bank."), code="cheque_incomplete")
        if not _CHEQUE_NUMBER.fullmatch(cheque_number) or len(cheque_bank) > 80:
            raise CounterPaymentRefused(_("Check the cheque number and the bank's name."), code="cheque_invalid")
        fields |= {"cheque_number": cheque_number, "cheque_bank": cheque_bank}
    elif method == CounterPayment.Method.CARD:
        if card_last_digits and not _CARD_DIGITS.fullmatch(card_last_digits):
            raise CounterPaymentRefused(_("Give the card's last four digits, nothing else."), code="card_invalid")
        if card_authorisation and not _CARD_AUTHORISATION.fullmatch(card_authorisation):
            raise CounterPaymentRefused(_("The authorisation code is letters and digits."), code="card_invalid")
        fields |= {"card_last_digits": card_last_digits, "card_authorisation": card_authorisation}
    else:
        # Cash handed over exactly when the clerk did not say otherwise.
        tendered = amount if amount_tendered is None else _amount(amount_tendered, currency=currency)
        if tendered < amount:
            raise CounterPaymentRefused(
                _("The amount tendered is less than the amount paid."), code="tendered_too_small"
            )
        fields |= {"amount_tendered": tendered, "change_given": tendered - amount}
    return fields


def _amount(amount: Decimal, *, currency: str) -> Decimal:
    try:
        return _amount_check(amount, currency=currency)
    except InvalidAmount as exc:
        raise CounterPaymentRefused(amount_error_text(str(amount), currency=currency, error=exc)) from exc


def _reference() -> str:
    # Ours, unique per counter (the payment's unique constraint); the customer
    # quotes the receipt number, the reference only ties the payment to its counter.
    return f"CTR-{secrets.token_hex(8).upper()}"


def counter_payment_record(
    *,
    clerk: User,
    account: ServiceAccount,
    amount: Decimal,
    method: str,
    bill: Bill | None = None,
    cheque_number: str = "",
    cheque_bank: str = "",
    card_last_digits: str = "",
    card_authorisation: str = "",
    amount_tendered: Decimal | None = None,
    reference: str | None = None,
) -> CounterPayment:
    """Record money taken at the counter of the account's agency.

    Applied by `payment_apply` with the agency's counter provider (to `bill`
    first if named, else the oldest open bills, the rest to credit) and written
    with its CounterPayment in one transaction; the audit trail names the clerk.
    Raises CounterPaymentRefused, with a message for the clerk, and writes
    nothing, when the clerk is not of the account's agency, the account is
    closed, the bill is not open, or the amount or the method's details are wrong.

    `reference` (the form's own, made when it was shown) makes a submission
    safe to repeat: the same form sent twice records one payment and returns it
    both times. Without one, a fresh reference is drawn.
    """
    currency = settings.SELFCARE_CURRENCY
    amount = _amount(amount, currency=currency)
    details = _details(
        method=method, amount=amount, currency=currency, cheque_number=cheque_number, cheque_bank=cheque_bank,
        card_last_digits=card_last_digits, card_authorisation=card_authorisation, amount_tendered=amount_tendered,
    )  # fmt: skip
    with audit_as(clerk), transaction.atomic():
        # The account first, as every payment path locks it (payments.locks):
        # its agency and its open bills cannot change until this commits.
        account = locks.account_lock_by_id(account_id=account.pk)
        agency = Agency.objects.get(subscribers=account.subscriber_id)
        if not counter_may_record(user=clerk, agency_id=agency.pk):
            raise CounterPaymentRefused(
                _("You may record payments only for the accounts of your agencies."), code="not_allowed"
            )
        if account.status == ServiceAccount.Status.CLOSED:
            raise CounterPaymentRefused(_("This account is closed."), code="account_closed")
        if bill is not None and not Bill.objects.filter(Bill.open_q(), pk=bill.pk, account=account).exists():
            raise CounterPaymentRefused(_("This bill is not open on this account any more."), code="bill_not_open")
        provider = counter_provider_for(agency=agency)
        if not provider.is_active:
            raise CounterPaymentRefused(_("This agency's counter does not take payments."), code="counter_inactive")
        if reference is not None:
            # Under the account lock a first submission has committed or not started.
            earlier = (
                CounterPayment.objects.filter(payment__provider=provider, payment__reference=reference)
                .select_related("payment")
                .first()
            )
            if earlier is not None:
                return _replay(earlier, account=account, amount=amount, method=method)
        for _attempt in range(3):
            try:
                result = payment_apply(
                    provider=provider, reference=reference or _reference(), account_number=account.number,
                    amount=amount, currency=currency, paid_at=timezone.now(),
                    bill_number=bill.number if bill else None, channel=method,
                )  # fmt: skip
                break
            except ReferenceConflict:
                if reference is not None:  # taken by a payment that is no counter payment of this form
                    raise CounterPaymentRefused(
                        _("This form was already used: open it again."), code="replayed"
                    ) from None
                continue  # pragma: no cover - 48 random bits met an earlier reference
        else:  # pragma: no cover
            raise CounterPaymentRefused(_("Please try again."), code="reference_exhausted")
        return CounterPayment.objects.create(payment=result.payment, clerk=clerk, agency=agency, **details)


def _replay(earlier: CounterPayment, *, account: ServiceAccount, amount: Decimal, method: str) -> CounterPayment:
    payment = earlier.payment
    if (payment.account_id, payment.amount, earlier.method) != (account.pk, amount, method):
        raise CounterPaymentRefused(
            _("This form was already used for another payment: open it again."), code="replayed"
        )
    return earlier


# --- Correcting ----------------------------------------------------------------


def counter_may_reverse(*, user: User, agency_id: int) -> bool:
    agency_ids = staff_agency_ids(user)
    return user.has_perm(REVERSE_PERMISSION) and (agency_ids is None or agency_id in agency_ids)


def counter_payment_reverse(*, counter_payment: CounterPayment, reason: str, user: User) -> bool:
    """A supervisor's correction: the payment is reversed with its reason (bills
    reopened, credit taken back). Returns False if it already was."""
    if not counter_may_reverse(user=user, agency_id=counter_payment.agency_id):
        raise CounterPaymentRefused(_("You may reverse only your agencies' counter payments."), code="not_allowed")
    reason = " ".join((reason or "").split())
    if not reason:
        raise CounterPaymentRefused(_("Give the reason for the reversal."), code="reason_required")
    payment = counter_payment.payment
    with audit_as(user):
        result = payment_reverse(provider=payment.provider, reference=payment.reference, reason=reason[:200])
    return result.created
