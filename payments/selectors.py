"""Reads of payments: what the API answers about an account or a payment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.selectors import staff_agency_ids
from billing.models import Bill, ServiceAccount
from core.money import quantize

from .checkout import checkout_supported
from .models import Allocation, CounterPayment, Payment, PaymentOrder, Provider

# Who imports which settlement files (README, "Staff roles"): an agency's
# supervisors its counter's; bank and wallet files, which list every agency's
# payments, staff who hold this permission and see every agency.
SETTLEMENT_IMPORT_PERMISSION = "payments.add_settlementimport"
PROVIDER_SETTLEMENT_PERMISSION = "payments.import_provider_settlement"


def money_str(amount: Decimal, currency: str) -> str:
    """An amount as the API writes it: a decimal string with the currency's digits ("12.500")."""
    return f"{quantize(amount, currency):f}"


def name_mask(full_name: str) -> str:
    """`Mohamed Ben Salem` → `M*** B*** S***`: a bank's clerk can check it is the
    right customer without the API handing out names for account numbers."""
    return " ".join(f"{word[0]}***" for word in full_name.split())


def payment_data(*, payment: Payment, allocations: list[Allocation] | None = None) -> dict[str, Any]:
    """The API's view of a payment (the contract's fields, in its order)."""
    if allocations is None:
        allocations = list(payment.allocations.select_related("bill").order_by("pk"))
    currency = payment.currency
    return {
        "reference": payment.reference,
        "status": payment.status,
        "receipt_number": payment.receipt_number,
        "account_number": payment.account.number,
        "amount": money_str(payment.amount, currency),
        "currency": currency,
        "allocations": [{"bill_number": a.bill.number, "amount": money_str(a.amount, currency)} for a in allocations],
        "credit": money_str(payment.credit, currency),
    }


def payment_get(*, provider: Provider, reference: str) -> Payment | None:
    """A provider's own payment; another provider's reference is as good as unknown."""
    return Payment.objects.select_related("account").filter(provider=provider, reference=reference).first()


def payment_reference_used(*, provider: Provider, reference: str) -> bool:
    return Payment.objects.filter(provider=provider, reference=reference).exists()


def account_due(*, account_number: str) -> dict[str, Any] | None:
    account = ServiceAccount.objects.select_related("subscriber").filter(number=account_number).first()
    if account is None:
        return None
    currency = settings.SELFCARE_CURRENCY
    bills = list(Bill.objects.filter(Bill.open_q(), account=account).order_by("due_date", "period", "pk"))
    return {
        "account_number": account.number,
        "customer_name": name_mask(account.subscriber.full_name),
        "currency": currency,
        "total_due": money_str(sum((b.amount_due for b in bills), Decimal(0)), currency),
        "bills": [
            {
                "bill_number": b.number,
                "period": b.period.strftime("%Y-%m"),
                "due_date": b.due_date.isoformat(),
                "amount_due": money_str(b.amount_due, b.currency),
            }
            for b in bills
        ],
    }


def checkout_providers():
    """Active providers that host a checkout, for the subscriber's "Pay with" choice."""
    return Provider.objects.filter(
        pk__in=[p.pk for p in Provider.objects.filter(is_active=True) if checkout_supported(p)]
    ).order_by("name")


def payments_of_account(*, account: ServiceAccount):
    return Payment.objects.filter(account=account).select_related("provider").order_by("-paid_at", "-pk")


def order_for_provider_ref(*, key_ids: tuple[str, ...], provider_ref: str) -> PaymentOrder | None:
    """The order a provider's webhook names by the provider's own reference."""
    return (
        PaymentOrder.objects.select_related("provider")
        .filter(provider__key_id__in=key_ids, provider_ref=provider_ref)
        .order_by("pk")
        .first()
    )


def open_bills_of(*, account: ServiceAccount) -> QuerySet[Bill]:
    """An account's open bills in the order a payment pays them (payments.locks)."""
    return Bill.objects.filter(Bill.open_q(), account=account).order_by("due_date", "period", "pk")


def settlement_providers(*, user: User) -> QuerySet[Provider]:
    """The providers whose settlement files `user` may import."""
    agency_ids = staff_agency_ids(user)
    allowed = Q(pk__in=[])
    if user.has_perm(SETTLEMENT_IMPORT_PERMISSION):
        counters = Q(kind=Provider.Kind.COUNTER)
        allowed |= counters if agency_ids is None else counters & Q(agency__in=agency_ids)
    if agency_ids is None and user.has_perm(PROVIDER_SETTLEMENT_PERMISSION):
        allowed |= ~Q(kind=Provider.Kind.COUNTER)
    return Provider.objects.filter(allowed).order_by("kind", "name")


def settlement_may_import_any(*, user: User) -> bool:
    return user.has_perm(SETTLEMENT_IMPORT_PERMISSION) or user.has_perm(PROVIDER_SETTLEMENT_PERMISSION)


def counter_receipt(*, counter_payment: CounterPayment) -> tuple[CounterPayment, list[Allocation]]:
    """A counter payment with what its receipt shows (account, customer, clerk,
    agency) and where the money went, in two queries."""
    found = CounterPayment.objects.select_related("payment__account__subscriber", "clerk", "agency").get(
        pk=counter_payment.pk
    )
    allocations = list(found.payment.allocations.select_related("bill").order_by("pk"))
    return found, allocations
