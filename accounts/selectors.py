"""Reads about subscribers that views of several apps share."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest

from core.sql import columns, fetch_all, instance_from_row

from . import roles
from .models import Subscriber, User


def subscriber_or_404(request: HttpRequest) -> Subscriber:
    """The logged-in subscriber; staff without a subscriber profile get 404, not 500."""
    try:
        return request.user.subscriber  # type: ignore[union-attr]
    except Subscriber.DoesNotExist:
        raise Http404("No subscriber profile") from None


_USER_SQL = (
    f"SELECT {columns(User, 'u')}, {columns(Subscriber, 's')} "  # noqa: S608 - column names from the models
    "FROM accounts_user u LEFT JOIN accounts_subscriber s ON s.user_id = u.id WHERE u.id = %s"
)


def user_with_subscriber(*, user_id: int) -> User | None:
    """The user of a session with their subscriber profile, as every portal page
    needs both: one statement, without building an ORM query each request."""
    rows = fetch_all(_USER_SQL, [user_id])
    if not rows:
        return None
    split = len(User._meta.concrete_fields)
    user = instance_from_row(User, rows[0][:split])
    if rows[0][split] is not None:  # staff have no subscriber profile
        user.subscriber = instance_from_row(Subscriber, rows[0][split:])
    return user


def staff_agency_ids(user: User | AnonymousUser) -> frozenset[int] | None:
    """The agencies whose customers a member of staff may see and touch, or None
    for every agency (the operator's superusers and auditors).

    The one answer every back-office page, admin class and search asks, so that
    scoping cannot differ from one screen to another. Kept on the user object,
    which lives as long as its request, so a page asks the database once.
    """
    try:
        return user._staff_agency_ids  # type: ignore[union-attr]
    except AttributeError:
        pass
    agency_ids: frozenset[int] | None
    if not (user.is_active and user.is_staff):
        agency_ids = frozenset()
    elif user.is_superuser or user.groups.filter(name=roles.AUDITOR).exists():
        agency_ids = None
    else:
        agency_ids = frozenset(user.agencies.values_list("pk", flat=True))  # type: ignore[union-attr]
    user._staff_agency_ids = agency_ids  # type: ignore[union-attr]
    return agency_ids
