"""Row locks of the payment paths, kept in one place so the order is one order.

Every writer takes them in this order, never another:

    the account  →  the payment  →  the account's bills (oldest first, by id)

The account lock serialises everything that moves an account's money (payments,
reversals, credit used by a new bill); the bills are locked too because the
overdue sweep updates them without taking the account. Nothing is locked that
all accounts share: receipt numbers come from a sequence (no lock), so payments
to different accounts never wait for each other.
"""

from __future__ import annotations

from collections.abc import Iterable

from billing.models import Bill, ServiceAccount
from core.models import get_or_none

from .models import Payment, Provider


def account_lock(*, number: str) -> ServiceAccount | None:
    """The account, locked, with its subscriber read in the same statement (not
    locked: `of`), whom the payment's message and audit entries name."""
    return get_or_none(
        ServiceAccount.objects.select_for_update(of=("self",)).select_related("subscriber").filter(number=number)
    )


def account_lock_by_id(*, account_id: int) -> ServiceAccount:
    return ServiceAccount.objects.select_for_update().get(pk=account_id)


def payment_lock(*, provider: Provider, reference: str) -> Payment | None:
    return Payment.objects.select_for_update().filter(provider=provider, reference=reference).first()


def bills_open_lock(*, account: ServiceAccount) -> list[Bill]:
    """The account's open bills, oldest first: the order payments pay them in."""
    bills = Bill.objects.select_for_update().filter(Bill.open_q(), account=account).order_by("pk")
    return sorted(bills, key=lambda b: (b.due_date, b.period, b.pk))


def bills_lock(*, ids: Iterable[int]) -> dict[int, Bill]:
    return {b.pk: b for b in Bill.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk")}
