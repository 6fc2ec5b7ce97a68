"""Reads of the back office: find a customer, and everything about them on one page.

Every read is scoped by `accounts.selectors.staff_agency_ids`: a clerk finds
and opens the customers of their agencies only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from auditlog.models import LogEntry
from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Lower, Replace
from django.http import Http404

from accounts.backends import normalize_identifier
from accounts.models import ContactChannel, Subscriber, User
from accounts.phones import ascii_digits
from accounts.selectors import staff_agency_ids
from billing.models import Bill, PrintRequest, ServiceAccount
from billing.numbers import InvalidAccountNumber, account_number_clean
from notifications.models import Message

SEARCH_LIMIT = 50
RECENT_BILLS = 12
RECENT_MESSAGES = 20
RECENT_PRINT_REQUESTS = 20
RECENT_AUDIT = 20

# What a name search ignores: Latin accents, Arabic short vowels and marks
# (fathatan .. sukun, superscript alef) and the tatweel, and the hamza on an alef.
# A name typed at the counter with or without them is the same name.
FOLD = {
    **dict.fromkeys("àâä", "a"),
    **dict.fromkeys("éèêë", "e"),
    **dict.fromkeys("îï", "i"),
    **dict.fromkeys("ôö", "o"),
    **dict.fromkeys("ùûü", "u"),
    "ç": "c",
    **dict.fromkeys("\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670\u0640", ""),
    **dict.fromkeys("أإآ", "ا"),
}
_FOLD_TABLE = str.maketrans(FOLD)


def name_fold(text: str) -> str:
    """A name as the search compares it (the database applies the same folding)."""
    return text.lower().translate(_FOLD_TABLE)


def _folded(expression: Any) -> Any:
    # Nested REPLACE rather than PostgreSQL's TRANSLATE or unaccent (an extension),
    # so the SQLite demo runs it too; the table scan is a back-office search's anyway.
    expression = Lower(expression)
    for char, plain in FOLD.items():
        expression = Replace(expression, Value(char), Value(plain))
    return expression


def subscribers_for_staff(*, user: User) -> QuerySet[Subscriber]:
    """The subscribers `user` may see: their agencies' only."""
    agency_ids = staff_agency_ids(user)
    subscribers = Subscriber.objects.all()
    return subscribers if agency_ids is None else subscribers.filter(agency_id__in=agency_ids)


@dataclass(frozen=True)
class CustomerSearch:
    results: list[Subscriber]
    # The one customer an account number, phone or national id designates, if any.
    exact: Subscriber | None


def customer_search(*, user: User, query: str) -> CustomerSearch:
    """By account number (spaces or not), phone (any spelling), national id, or name
    (Latin or Arabic; case, accents and Arabic marks ignored)."""
    query = (query or "").strip()[:100]
    if not query:
        return CustomerSearch(results=[], exact=None)
    exact = Q(national_id__iexact=query)
    digits = ascii_digits(query)
    try:
        exact |= Q(accounts__number=account_number_clean(digits))
    except InvalidAccountNumber:
        pass
    phone = normalize_identifier(digits)
    if phone.startswith("+"):
        exact |= Q(user__phone=phone) | Q(channels__address=phone)
    elif "@" in phone:
        exact |= Q(user__email__iexact=phone) | Q(channels__address=phone)
    scoped = subscribers_for_staff(user=user).select_related("user", "agency")
    exact_ids = list(scoped.filter(exact).values_list("pk", flat=True).distinct()[:SEARCH_LIMIT])
    by_name = (
        scoped.alias(folded_name=_folded(F("full_name")), folded_name_ar=_folded(F("full_name_ar")))
        .filter(
            Q(folded_name__contains=name_fold(query))
            | Q(folded_name_ar__contains=name_fold(query))
            | Q(pk__in=exact_ids)
        )
        .order_by("full_name", "pk")[:SEARCH_LIMIT]
    )
    results = list(by_name)
    single = [s for s in results if s.pk in exact_ids] if len(set(exact_ids)) == 1 else []
    return CustomerSearch(results=results, exact=single[0] if single else None)


@dataclass(frozen=True)
class Customer360:
    subscriber: Subscriber
    accounts: list[ServiceAccount]  # each with `balance`: what its open bills still ask
    balance: Decimal
    open_bills: list[Bill]
    recent_bills: list[Bill]
    channels: list[ContactChannel]
    messages: list[Message]
    print_requests: list[PrintRequest]
    audit_entries: list[LogEntry]


def customer_360(*, user: User, subscriber_id: int) -> Customer360:
    """One customer whole, in a fixed number of queries; 404 outside the staff's agencies."""
    subscriber = subscribers_for_staff(user=user).select_related("user", "agency").filter(pk=subscriber_id).first()
    if subscriber is None:
        raise Http404("No such customer")
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=14, decimal_places=3))
    accounts = list(
        ServiceAccount.objects.filter(subscriber=subscriber)
        .select_related("plan")
        .annotate(balance=Coalesce(Sum("bills__amount_due", filter=Bill.open_q("bills__")), zero))
        .order_by("number")
    )
    bills = Bill.objects.filter(account__subscriber=subscriber).select_related("account")
    open_bills = list(bills.filter(Bill.open_q()).order_by("due_date", "number"))
    recent_bills = list(bills.order_by("-period", "number")[:RECENT_BILLS])
    channels = list(ContactChannel.objects.filter(subscriber=subscriber).order_by("kind", "created_at"))
    # What was sent, never the text: a verification code must not be read off this page.
    messages = list(
        Message.objects.filter(subscriber=subscriber)
        .only("event", "channel_kind", "address", "status", "created_at", "sent_at", "delivered_at", "reference")
        .order_by("-created_at")[:RECENT_MESSAGES]
    )
    print_requests = list(
        PrintRequest.objects.filter(bill__account__subscriber=subscriber)
        .select_related("bill", "agency", "requested_by", "printed_by")
        .order_by("-requested_at")[:RECENT_PRINT_REQUESTS]
    )
    audit_entries = list(
        LogEntry.objects.filter(additional_data__subscriber_id=subscriber.pk)
        .select_related("actor", "content_type")
        .order_by("-timestamp")[:RECENT_AUDIT]
    )
    return Customer360(
        subscriber=subscriber,
        accounts=accounts,
        balance=sum((a.balance for a in accounts), Decimal(0)),
        open_bills=open_bills,
        recent_bills=recent_bills,
        channels=channels,
        messages=messages,
        print_requests=print_requests,
        audit_entries=audit_entries,
    )
