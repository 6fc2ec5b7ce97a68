"""Reads about subscribers that views of several apps share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AnonymousUser
from django.db.models import (
    BooleanField,
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.http import Http404, HttpRequest
from django.utils import timezone

from core.dates import month_add
from core.sql import columns, fetch_all, instance_from_row

from . import roles
from .models import Agency, AgencyHours, AgencyHoursReduction, ChannelKind, ContactChannel, Subscriber, User
from .phones import phone_display_local


class NoSubscriberProfile(Http404):
    """A logged-in user without a subscriber profile on a subscriber page: a 404,
    which accounts.middleware turns into the back office for staff ("view site")."""


def subscriber_or_404(request: HttpRequest) -> Subscriber:
    """The logged-in subscriber; staff without a subscriber profile get 404, not 500."""
    try:
        return request.user.subscriber  # type: ignore[union-attr]
    except Subscriber.DoesNotExist:
        raise NoSubscriberProfile("No subscriber profile") from None


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


# --- Logging in, and a forgotten password --------------------------------------


def _reset_channels(*, phone: str) -> QuerySet[ContactChannel]:
    """Where a password-reset code for the login phone `phone` (E.164) may go: the
    verified SMS channel at that very number, of the subscriber who logs in with it.

    The login phone is unique, so it names one person even when a family shares
    the number as a contact channel; and a code goes only to a number that proved
    it receives them. Staff reset in the back office (TOTP), never by SMS; a
    disabled account or one without a usable password is not reset, as Django's
    e-mail reset does not.
    """
    return ContactChannel.objects.filter(
        kind=ChannelKind.SMS,
        address=phone,
        verified_at__isnull=False,
        subscriber__user__phone=phone,
        subscriber__user__is_active=True,
        subscriber__user__is_staff=False,
        subscriber__user__is_superuser=False,
    ).exclude(subscriber__user__password__startswith=UNUSABLE_PASSWORD_PREFIX)


def password_reset_channel(*, phone: str) -> ContactChannel | None:
    """The channel a reset code for `phone` goes to, or None (then nothing is sent)."""
    return _reset_channels(phone=phone).select_related("subscriber__user").first()


@dataclass(frozen=True)
class LoginDetails:
    """How a subscriber logs in, for their "Login details" page."""

    email: str
    phone: str  # E.164, "" when the login has no phone
    phone_display: str  # as people of the country write it
    # The login phone is a verified SMS channel: a forgotten password can be reset by a code sent to it.
    phone_resets_by_sms: bool


def user_login_details(*, user: User) -> LoginDetails:
    phone = user.phone or ""
    return LoginDetails(
        email=user.email,
        phone=phone,
        phone_display=phone_display_local(phone) if phone else "",
        # The login phone is unique: a channel found for it is this user's own.
        phone_resets_by_sms=bool(phone) and _reset_channels(phone=phone).exists(),
    )


# --- Paper or e-bills: the one rule ---------------------------------------------


def _has_verified_channel() -> Exists:
    return Exists(ContactChannel.objects.filter(subscriber=OuterRef("pk"), verified_at__isnull=False))


def subscriber_has_verified_channel(*, subscriber_id: int) -> bool:
    return ContactChannel.objects.filter(subscriber_id=subscriber_id, verified_at__isnull=False).exists()


def subscriber_paperless_q(*, today: dt.date) -> Q:
    """Which subscribers get e-bills and no paper bill on `today`, as a filter on
    Subscriber: those who chose it, and those whose agency stopped paper on or
    before `today`; either way only with a verified channel, since a bill must
    reach them somewhere. Every place that decides paper asks this (the bill
    page's paper-copy button, the Contact page, the back office's figures and
    filters), so the rule cannot differ from one screen to another."""
    return (Q(paperless=True) | Q(agency__paperless_from__lte=today)) & Q(_has_verified_channel())


@dataclass(frozen=True)
class PaperBills:
    """What the Contact page tells a subscriber about paper bills."""

    paperless: bool  # effective on the day asked, per subscriber_paperless_q
    chosen: bool  # the subscriber's own choice
    has_verified_channel: bool
    agency_paperless_from: dt.date | None  # also a day to come, to announce it
    agency_rolled_out: bool  # the agency stopped paper on or before the day asked


def subscriber_paper_bills(*, subscriber_id: int, today: dt.date | None = None) -> PaperBills:
    """The subscriber's paper-or-e-bills situation, in one statement."""
    today = today or timezone.localdate()
    row = (
        Subscriber.objects.filter(pk=subscriber_id)
        .annotate(
            is_paperless=ExpressionWrapper(subscriber_paperless_q(today=today), output_field=BooleanField()),
            verified=_has_verified_channel(),
        )
        .values_list("is_paperless", "paperless", "verified", "agency__paperless_from")
        .get()
    )
    return PaperBills(
        paperless=bool(row[0]),
        chosen=row[1],
        has_verified_channel=bool(row[2]),
        agency_paperless_from=row[3],
        agency_rolled_out=row[3] is not None and row[3] <= today,
    )


def subscriber_is_paperless(*, subscriber_id: int, today: dt.date | None = None) -> bool:
    return subscriber_paper_bills(subscriber_id=subscriber_id, today=today).paperless


# --- The public agencies page ----------------------------------------------------


@dataclass(frozen=True)
class DayHours:
    weekday: int  # ISO, Monday is 1
    openings: tuple[tuple[dt.time, dt.time], ...]  # empty: closed
    is_today: bool


@dataclass(frozen=True)
class AgencyCard:
    agency: Agency
    week: tuple[DayHours, ...]
    reduction: AgencyHoursReduction | None  # the one that applies today
    phone_display: str
    tel_url: str
    geo_url: str
    osm_url: str

    @property
    def has_hours(self) -> bool:
        return any(day.openings for day in self.week)


def _coordinate(value: Decimal) -> str:
    # 36.800000 -> 36.8, never 3.68E+1
    return format(value.normalize(), "f")


def _map_urls(agency: Agency) -> tuple[str, str]:
    """A geo: URI, which a phone opens in its own map app, and an OpenStreetMap
    link for the phones and computers that do not know geo:; no script, no tiles."""
    label = f"{agency.name}, {agency.city}"
    if agency.latitude is None or agency.longitude is None:
        place = f"{agency.address}, {agency.city}".replace("\n", " ")
        return (
            "geo:0,0?q=" + quote(place, safe=""),
            "https://www.openstreetmap.org/search?" + urlencode({"query": place}),
        )
    lat, lon = _coordinate(agency.latitude), _coordinate(agency.longitude)
    return (
        f"geo:{lat},{lon}?q={lat},{lon}(" + quote(label, safe="") + ")",
        f"https://www.openstreetmap.org/?{urlencode({'mlat': lat, 'mlon': lon})}#map=17/{lat}/{lon}",
    )


def agency_cards(*, today: dt.date, agency_ids: Iterable[int] | None = None) -> list[AgencyCard]:
    """Every agency (or those of `agency_ids`: a bill's PDF shows its own) as the
    public page shows it on `today` (the operator's date): three statements,
    whatever the number of agencies."""
    current = AgencyHoursReduction.objects.filter(starts_on__lte=today, ends_on__gte=today).order_by("-starts_on")
    agencies = Agency.objects.all() if agency_ids is None else Agency.objects.filter(pk__in=list(agency_ids))
    agencies = agencies.order_by("city", "name_fr").prefetch_related(
        Prefetch("hours", queryset=AgencyHours.objects.order_by("weekday", "opens")),
        Prefetch("hours_reductions", queryset=current, to_attr="current_reductions"),
    )
    cards = []
    for agency in agencies:
        openings: dict[int, list[tuple[dt.time, dt.time]]] = {}
        for hours in agency.hours.all():
            openings.setdefault(hours.weekday, []).append((hours.opens, hours.closes))
        week = tuple(
            DayHours(weekday=day, openings=tuple(openings.get(day, ())), is_today=day == today.isoweekday())
            for day in range(1, 8)
        )
        geo_url, osm_url = _map_urls(agency)
        cards.append(
            AgencyCard(
                agency=agency,
                week=week,
                # The latest-starting one wins when a clerk made two overlap.
                reduction=agency.current_reductions[0] if agency.current_reductions else None,
                phone_display=phone_display_local(agency.phone) if agency.phone else "",
                tel_url=f"tel:{agency.phone}" if agency.phone else "",
                geo_url=geo_url,
                osm_url=osm_url,
            )
        )
    return cards


# --- Paperless roll-out figures for the back office ------------------------------


def _count(queryset: QuerySet) -> Coalesce:
    """COUNT(*) of a per-agency subquery, 0 when it has no row."""
    counted = queryset.order_by().values("agency").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def agencies_with_rollout(*, queryset: QuerySet[Agency], today: dt.date) -> QuerySet[Agency]:
    """Agencies annotated with `subscriber_count`, `verified_count` (subscribers
    with a verified channel) and `paperless_count` (e-bills on `today`, per
    subscriber_paperless_q): correlated counts in the same statement as the
    agencies, so a changelist of fifty agencies is still one query."""
    subscribers = Subscriber.objects.filter(agency=OuterRef("pk"))
    return queryset.annotate(
        subscriber_count=_count(subscribers),
        verified_count=_count(subscribers.filter(_has_verified_channel())),
        paperless_count=_count(subscribers.filter(subscriber_paperless_q(today=today))),
    )


@dataclass(frozen=True)
class AgencyRollout:
    agency: Agency
    subscribers: int
    verified: int
    paperless: int
    paper_copies: tuple[int, ...]  # per month, oldest first, as `months`

    @property
    def verified_share(self) -> float | None:
        return self.verified / self.subscribers if self.subscribers else None

    @property
    def paperless_share(self) -> float | None:
        return self.paperless / self.subscribers if self.subscribers else None


def agency_rollout_report(
    *, queryset: QuerySet[Agency], today: dt.date, months: int = 12
) -> tuple[list[dt.date], list[AgencyRollout]]:
    """The paperless roll-out of the given agencies: their shares, and the paper
    copies asked for in each of the last `months` months (this one included), by
    month in the operator's time zone. Two statements for any number of agencies.

    Paper copy requests are billing's rows, reached through their `print_requests`
    relation (as the subscriber admin reaches accounts numbers) without importing
    billing, which sits above accounts."""
    first = month_add(today.replace(day=1), -(months - 1))
    month_list = [month_add(first, i) for i in range(months)]
    since = timezone.make_aware(dt.datetime.combine(first, dt.time()))
    agencies = list(agencies_with_rollout(queryset=queryset, today=today))
    counts = (
        queryset.filter(print_requests__requested_at__gte=since)
        .annotate(month=TruncMonth("print_requests__requested_at", output_field=DateField()))
        .order_by()
        .values_list("pk", "month")
        .annotate(n=Count("print_requests"))
    )
    by_month = {(agency_id, month): n for agency_id, month, n in counts}
    return month_list, [
        AgencyRollout(
            agency=agency,
            subscribers=agency.subscriber_count,
            verified=agency.verified_count,
            paperless=agency.paperless_count,
            paper_copies=tuple(by_month.get((agency.pk, month), 0) for month in month_list),
        )
        for agency in agencies
    ]
