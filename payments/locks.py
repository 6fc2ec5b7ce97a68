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
from functools import cache

from django.db import connection

from accounts.models import ContactChannel, Subscriber
from billing.models import Bill, ServiceAccount
from billing.services import bills_in_paying_order
from core.sql import columns, fetch_all, in_list, instance_from_row

from .models import Payment, Provider

# The hot path of a payment (payment_apply) reads its rows in plain SQL, built
# once: the ORM spent more CPU composing these SELECTs than PostgreSQL answering.


@cache
def _account_sql(vendor: str) -> tuple[str, int, int]:
    """The account, its subscriber and the subscriber's channels (a row each, or one
    row of NULLs), only the account locked; and where each model's columns end."""
    a, s = len(ServiceAccount._meta.concrete_fields), len(Subscriber._meta.concrete_fields)
    sql = (
        f"SELECT {columns(ServiceAccount, 'a')}, {columns(Subscriber, 's')}, {columns(ContactChannel, 'c')} "
        f"FROM {ServiceAccount._meta.db_table} a "
        f"JOIN {Subscriber._meta.db_table} s ON s.id = a.subscriber_id "
        f"LEFT JOIN {ContactChannel._meta.db_table} c ON c.subscriber_id = s.id "
        # ContactChannel's ordering, so the channels come as subscriber.channels.all() gives them.
        "WHERE a.number = %s ORDER BY c.kind, c.created_at, c.id"
    )
    if vendor == "postgresql":  # SQLite has no row locks: one writer at a time anyway
        sql += " FOR UPDATE OF a"
    return sql, a, a + s


def account_lock(*, number: str) -> ServiceAccount | None:
    """The account, locked, with its subscriber and the subscriber's contact
    channels read in the same statement (not locked), whom the payment's message
    and audit entries name: `account.subscriber.channels.all()` reads no more."""
    sql, end_account, end_subscriber = _account_sql(connection.vendor)
    rows = fetch_all(sql, [number])
    if not rows:
        return None
    account = instance_from_row(ServiceAccount, rows[0][:end_account])
    subscriber = instance_from_row(Subscriber, rows[0][end_account:end_subscriber])
    ServiceAccount.subscriber.field.set_cached_value(account, subscriber)
    channels = [
        instance_from_row(ContactChannel, row[end_subscriber:]) for row in rows if row[end_subscriber] is not None
    ]
    for channel in channels:
        ContactChannel.subscriber.field.set_cached_value(channel, subscriber)
    # As prefetch_related leaves it: the related manager answers from this list.
    prefetched = subscriber.channels.all()
    prefetched._result_cache = channels
    prefetched._prefetch_done = True
    subscriber._prefetched_objects_cache = {ContactChannel.subscriber.field.remote_field.cache_name: prefetched}
    return account


def account_lock_by_id(*, account_id: int) -> ServiceAccount:
    return ServiceAccount.objects.select_for_update().get(pk=account_id)


def payment_lock(*, provider: Provider, reference: str) -> Payment | None:
    return Payment.objects.select_for_update().filter(provider=provider, reference=reference).first()


@cache
def _bills_open_sql(vendor: str) -> str:
    sql = (
        f"SELECT {columns(Bill, 'b')} FROM {Bill._meta.db_table} b WHERE b.account_id = %s "
        f"AND b.status IN {in_list([str(s) for s in Bill.OPEN_STATUSES])} AND b.amount_due > 0 ORDER BY b.id"
    )
    return sql + (" FOR UPDATE" if vendor == "postgresql" else "")


def bills_open_lock(*, account: ServiceAccount) -> list[Bill]:
    """The account's open bills (Bill.open_q), oldest first: the order payments pay them in."""
    return bills_in_paying_order(
        instance_from_row(Bill, row) for row in fetch_all(_bills_open_sql(connection.vendor), [account.pk])
    )


def bills_lock(*, ids: Iterable[int]) -> dict[int, Bill]:
    return {b.pk: b for b in Bill.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk")}
