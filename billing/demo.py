"""Demo data: agencies, plans, subscribers, and years of consumption and bills.

Deterministic (a seeded random generator) and written in bulk, so the default
size seeds in seconds. Bills are priced by `services.bill_build`, that is
`tariffs.bill_compute`, the same code that issues real bills, so the demo shows
what production would charge.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.utils import timezone

from accounts import roles
from accounts.models import (
    Agency,
    AgencyHours,
    AgencyHoursReduction,
    ChannelKind,
    ContactChannel,
    Language,
    Subscriber,
    User,
)
from core.dates import month_add
from core.money import quantize

from .models import (
    UTILITY_KINDS,
    Bill,
    BillLine,
    Consumption,
    Plan,
    PlanLevy,
    PlanTier,
    PrintRequest,
    ServiceAccount,
    ServiceKind,
    Unit,
)
from .services import account_numbers_reserve, bill_build, bills_flag_overdue
from .tariffs import plan_terms

DEMO_PASSWORD = "selfcare-demo"
DEMO_SUBSCRIBER_EMAIL = "subscriber@example.com"
DEMO_SUBSCRIBER_PHONE = "+21620000001"
DEMO_CLERK_EMAIL = "clerk@example.com"
DEMO_SUPERVISOR_EMAIL = "supervisor@example.com"
DEMO_AUDITOR_EMAIL = "auditor@example.com"
DEMO_ADMIN_EMAIL = "admin@example.com"
# One member of staff per role (accounts.roles); the clerk and the supervisor work at the first agency.
DEMO_STAFF = [
    (DEMO_CLERK_EMAIL, roles.CLERK, "Salma", "Gharbi"),
    (DEMO_SUPERVISOR_EMAIL, roles.SUPERVISOR, "Karim", "Jebali"),
    (DEMO_AUDITOR_EMAIL, roles.AUDITOR, "Leila", "Chebbi"),
]

# Usual weeks as (first ISO weekday, last ISO weekday, opens, closes); Mauritania
# works Sunday to Thursday. Coordinates and phones are plausible, not real.
AGENCIES = [
    {"code": "TUN-C", "ar": "الوكالة التجارية تونس المركز", "fr": "Agence commerciale Tunis Centre", "city": "Tunis",
     "address": "38 rue Kamel Ataturk, 1001 Tunis", "phone": "+21671123456", "lat": "36.800800", "lon": "10.180600",
     "hours": [(1, 5, "08:00", "17:00"), (6, 6, "08:00", "12:00")]},
    {"code": "SFX-N", "ar": "الوكالة التجارية صفاقس الشمالية", "fr": "Agence commerciale Sfax Nord", "city": "Sfax",
     "address": "Route de Tunis km 2, 3027 Sfax", "phone": "+21674400500", "lat": "34.756000", "lon": "10.742000",
     "hours": [(1, 5, "08:00", "12:00"), (1, 5, "13:30", "16:30")]},
    {"code": "NKC-T", "ar": "وكالة نواكشوط تفرغ زينة", "fr": "Agence Nouakchott Tevragh Zeina", "city": "Nouakchott",
     "address": "Avenue Charles de Gaulle, Tevragh Zeina", "phone": "+22245251234", "lat": "18.100000",
     "lon": "-15.969000", "hours": [(7, 7, "08:00", "15:00"), (1, 4, "08:00", "15:00")]},
]  # fmt: skip

# (code, ar, fr, en, kind, monthly fee, tiers [(from, to, price)] or allowances, active; for plan
# changes: "immediate" (a move to it may start at once) and "approval" (a supervisor approves it))
PLANS: list[dict] = [
    {"code": "ELEC-RES", "ar": "منزلي منخفض الجهد", "fr": "Résidentiel basse tension", "en": "Residential low voltage",
     "kind": ServiceKind.ELECTRICITY, "fee": "0.800",
     "tiers": [(0, 50, "0.062"), (50, 100, "0.096"), (100, 200, "0.176"), (200, 300, "0.218"), (300, 500, "0.341"), (500, None, "0.414")],
     # Fixed amounts on every bill: (ar, fr, en, amount, subject to VAT).
     "levies": [("المساهمة البلدية", "Contribution municipale", "Municipal levy", "0.300", True),
                ("معلوم الإذاعة والتلفزة", "Redevance radio-télévision", "Radio and TV fee", "0.500", False)]},
    {"code": "ELEC-PRO", "ar": "مهني منخفض الجهد", "fr": "Professionnel basse tension", "en": "Business low voltage",
     "kind": ServiceKind.ELECTRICITY, "fee": "4.500", "tiers": [(0, 300, "0.195"), (300, None, "0.293")], "approval": True},
    {"code": "ELEC-ECO", "ar": "اقتصادي (قديم)", "fr": "Économique (ancien)", "en": "Economy (legacy)",
     "kind": ServiceKind.ELECTRICITY, "fee": "0.500", "tiers": [(0, 100, "0.075"), (100, None, "0.190")], "active": False},
    {"code": "WATER-DOM", "ar": "استعمال منزلي", "fr": "Usage domestique", "en": "Household use",
     "kind": ServiceKind.WATER, "fee": "1.200",
     "tiers": [(0, 20, "0.200"), (20, 40, "0.745"), (40, 70, "1.040"), (70, 150, "1.490"), (150, None, "1.750")]},
    {"code": "WATER-PRO", "ar": "استعمال مهني", "fr": "Usage professionnel", "en": "Business use",
     "kind": ServiceKind.WATER, "fee": "3.000", "tiers": [(0, 100, "1.150"), (100, None, "1.650")], "approval": True},
    {"code": "GAS-RES", "ar": "غاز منزلي", "fr": "Gaz résidentiel", "en": "Residential gas",
     "kind": ServiceKind.GAS, "fee": "0.900", "tiers": [(0, 30, "0.236"), (30, None, "0.300")]},
    {"code": "MOB-10", "ar": "باقة 10 جيغا", "fr": "Forfait 10 Go", "en": "10 GB plan",
     "kind": ServiceKind.MOBILE, "fee": "25.000",
     "allow": {"minutes": 300, "sms": 100, "gb": "10", "p_min": "0.150", "p_sms": "0.050", "p_gb": "2.000"}, "immediate": True},
    {"code": "MOB-30", "ar": "باقة 30 جيغا", "fr": "Forfait 30 Go", "en": "30 GB plan",
     "kind": ServiceKind.MOBILE, "fee": "45.000",
     "allow": {"minutes": 1000, "sms": 500, "gb": "30", "p_min": "0.120", "p_sms": "0.040", "p_gb": "1.500"}, "immediate": True},
    {"code": "FIX-600", "ar": "هاتف قار 600 دقيقة", "fr": "Fixe 600 minutes", "en": "Landline 600 minutes",
     "kind": ServiceKind.FIXED_LINE, "fee": "12.000", "allow": {"minutes": 600, "p_min": "0.060"}},
    {"code": "NET-20M", "ar": "إنترنت 20 ميغا", "fr": "Internet 20 Mb/s", "en": "Internet 20 Mb/s",
     "kind": ServiceKind.INTERNET, "fee": "39.000", "allow": {"gb": "300", "p_gb": "1.000"}},
]  # fmt: skip

FIRST_NAMES = [("محمد", "Mohamed"), ("فاطمة", "Fatma"), ("أحمد", "Ahmed"), ("مريم", "Meriem"), ("علي", "Ali"),
               ("خديجة", "Khadija"), ("يوسف", "Youssef"), ("سلمى", "Salma"), ("عمر", "Omar"), ("آمنة", "Amna"),
               ("حمزة", "Hamza"), ("ليلى", "Leila"), ("سامي", "Sami"), ("نور", "Nour"), ("كريم", "Karim"),
               ("هالة", "Hela"), ("إبراهيم", "Brahim"), ("زينب", "Zeineb"), ("المختار", "El Moctar"), ("مريم", "Mariem")]  # fmt: skip
FAMILY_NAMES = [("بن علي", "Ben Ali"), ("الطرابلسي", "Trabelsi"), ("الغربي", "Gharbi"), ("الحمامي", "Hammami"),
                ("الجبالي", "Jebali"), ("بن سالم", "Ben Salem"), ("المرزوقي", "Marzouki"), ("ولد أحمد", "Ould Ahmed"),
                ("ولد محمد", "Ould Mohamed"), ("منت سيدي", "Mint Sidi"), ("الشابي", "Chebbi"), ("بوزيد", "Bouzid")]  # fmt: skip
# (Arabic, French): an address is written in the subscriber's language, as the
# contract was; streets and cities have both names on the signs.
STREETS = [("شارع الحبيب بورقيبة", "Avenue Habib Bourguiba"), ("نهج مرسيليا", "Rue de Marseille"),
           ("نهج ابن خلدون", "Rue Ibn Khaldoun"), ("شارع الحرية", "Avenue de la Liberté"),
           ("نهج الجزيرة", "Rue El Jazira"), ("حي الخضراء", "Cité El Khadra"), ("طريق المطار", "Route de l'Aéroport"),
           ("نهج النصر", "Rue Ennasr")]  # fmt: skip
CITIES_AR = {"Tunis": "تونس", "Sfax": "صفاقس", "Nouakchott": "نواكشوط"}
# The demo subscriber, in both scripts: the pages in Arabic greet them in Arabic.
DEMO_SUBSCRIBER_NAME = ("محمد بن سالم", "Mohamed Ben Salem")


def demo_address(*, number: int, street: tuple[str, str], city: str, arabic: bool) -> str:
    if arabic:
        return f"{number} {street[0]}، {CITIES_AR.get(city, city)}"
    return f"{number} {street[1]}, {city}"


# Main kinds a subscriber holds, weighted towards the utilities.
KIND_WEIGHTS = [(ServiceKind.ELECTRICITY, 40), (ServiceKind.WATER, 25), (ServiceKind.GAS, 10),
                (ServiceKind.MOBILE, 15), (ServiceKind.FIXED_LINE, 5), (ServiceKind.INTERNET, 5)]  # fmt: skip


@dataclass
class SeedReport:
    created: bool
    agencies: int = 0
    subscribers: int = 0
    accounts: int = 0
    bills: int = 0
    consumption_rows: int = 0
    logins: list[tuple[str, str]] = field(default_factory=list)


def demo_logins() -> list[tuple[str, str]]:
    return [
        (f"{DEMO_SUBSCRIBER_EMAIL} / {DEMO_SUBSCRIBER_PHONE}", "subscriber"),
        (DEMO_CLERK_EMAIL, f"agency clerk, {AGENCIES[0]['code']} (back office)"),
        (DEMO_SUPERVISOR_EMAIL, f"agency supervisor, {AGENCIES[0]['code']} (back office, approvals)"),
        (DEMO_AUDITOR_EMAIL, "auditor (back office, read-only, every agency)"),
        (DEMO_ADMIN_EMAIL, "superuser"),
    ]


def plans_ensure() -> dict[str, Plan]:
    plans = {}
    for spec in PLANS:
        allow = spec.get("allow", {})
        plan, created = Plan.objects.get_or_create(
            code=spec["code"],
            defaults={
                "name_ar": spec["ar"], "name_fr": spec["fr"], "name_en": spec["en"], "kind": spec["kind"],
                "monthly_fee": Decimal(spec["fee"]), "is_active": spec.get("active", True),
                "allows_immediate_change": spec.get("immediate", False), "change_needs_approval": spec.get("approval", False),
                "included_minutes": allow.get("minutes"), "included_sms": allow.get("sms"),
                "included_data_gb": Decimal(allow["gb"]) if "gb" in allow else None,
                "price_per_minute": allow.get("p_min"), "price_per_sms": allow.get("p_sms"),
                "price_per_gb": allow.get("p_gb"),
            },
        )  # fmt: skip
        if created:
            PlanLevy.objects.bulk_create(
                PlanLevy(plan=plan, position=i, name_ar=ar, name_fr=fr, name_en=en, amount=Decimal(amount),
                         taxable=taxable)
                for i, (ar, fr, en, amount, taxable) in enumerate(spec.get("levies", []), start=1)
            )  # fmt: skip
            PlanTier.objects.bulk_create(
                PlanTier(
                    plan=plan,
                    position=i,
                    from_quantity=Decimal(low),
                    to_quantity=None if high is None else Decimal(high),
                    unit_price=Decimal(price),
                )
                for i, (low, high, price) in enumerate(spec.get("tiers", []), start=1)
            )
        plans[plan.code] = plan
    for plan in Plan.objects.prefetch_related("tiers", "levies"):
        plans[plan.code] = plan
    return plans


def _usage(kind: str, month: int, scale: float, rng: random.Random) -> dict[str, Decimal]:
    """A plausible month: air conditioning peaks in August, heating gas in January."""
    noise = rng.uniform(0.85, 1.15)
    summer = 1 + 0.45 * math.cos(2 * math.pi * (month - 8) / 12)
    winter = 1 + 0.8 * math.cos(2 * math.pi * (month - 1) / 12)
    q = lambda x: Decimal(str(round(max(x, 0), 3)))  # noqa: E731
    if kind == ServiceKind.ELECTRICITY:
        return {Unit.KWH: Decimal(round(220 * scale * summer * noise))}
    if kind == ServiceKind.WATER:
        return {Unit.M3: Decimal(round(22 * scale * (1 + 0.3 * (summer - 1)) * noise))}
    if kind == ServiceKind.GAS:
        return {Unit.M3: Decimal(round(45 * scale * winter * noise))}
    if kind == ServiceKind.MOBILE:
        return {Unit.GB: q(9 * scale * noise), Unit.MINUTES: Decimal(round(280 * scale * noise)),
                Unit.SMS: Decimal(round(60 * scale * noise))}  # fmt: skip
    if kind == ServiceKind.FIXED_LINE:
        return {Unit.MINUTES: Decimal(round(450 * scale * noise))}
    return {Unit.GB: q(180 * scale * noise)}


def _paid_share(age: int, rng: random.Random) -> Decimal:
    """How much of a bill `age` months old has been paid: old bills mostly in full."""
    roll = rng.random()
    if age == 0:
        return Decimal(1) if roll < 0.3 else (Decimal("0.5") if roll < 0.4 else Decimal(0))
    if age == 1:
        return Decimal(1) if roll < 0.8 else (Decimal("0.5") if roll < 0.9 else Decimal(0))
    return Decimal(1) if roll < 0.985 else (Decimal("0.3") if roll < 0.993 else Decimal(0))


def history_build(
    *,
    accounts: Iterable[ServiceAccount],
    plans: dict[int, Plan],
    months: int,
    today: dt.date,
    rng: random.Random,
    paid: dict[tuple[int, int], Decimal] | None = None,
) -> tuple[list[Consumption], list[Bill], list[list[BillLine]]]:
    """`months` of consumption and bills per account, ending last month.

    `paid` overrides the paid share for (account index, age) pairs, so the demo
    subscriber gets exactly the overdue bill the README promises.
    """
    last_period = month_add(today.replace(day=1), -1)
    terms = {pk: plan_terms(plan) for pk, plan in plans.items()}  # priced from plain values, once per plan
    consumptions, bills, lines = [], [], []
    for index, account in enumerate(accounts):
        plan = terms[account.plan_id]
        scale = rng.uniform(0.5, 1.8)
        meter = Decimal(rng.randint(1000, 50000))
        for age in range(months - 1, -1, -1):
            period = month_add(last_period, -age)
            usage = _usage(account.kind, period.month, scale, rng)
            for unit, quantity in usage.items():
                is_meter = account.kind in UTILITY_KINDS
                meter += quantity if is_meter else 0
                consumptions.append(
                    Consumption(
                        account=account, period=period, unit=unit, quantity=quantity,
                        meter_index=meter if is_meter else None,
                    )
                )  # fmt: skip
            # Monthly bills go out on the 5th; the latest one a couple of days ago,
            # so it is never overdue yet whatever day the demo is seeded.
            issue = month_add(period, 1) + dt.timedelta(days=4)
            if age == 0:
                issue = max(month_add(period, 1), today - dt.timedelta(days=2))
            bill, bill_lines = bill_build(account=account, plan=plan, period=period, usage=usage, issue_date=issue)
            share = (paid or {}).get((index, age))
            if share is None:
                share = _paid_share(age, rng)
            bill.set_amount_paid(quantize(bill.amount_total * share, bill.currency))
            bills.append(bill)
            lines.append(bill_lines)
    return consumptions, bills, lines


def history_save(consumptions: list[Consumption], bills: list[Bill], lines: list[list[BillLine]]) -> None:
    Consumption.objects.bulk_create(consumptions, batch_size=2000)
    Bill.objects.bulk_create(bills, batch_size=2000)
    for bill, bill_lines in zip(bills, lines, strict=True):
        for line in bill_lines:
            line.bill = bill  # re-bind now that the bill has its primary key
    BillLine.objects.bulk_create([line for group in lines for line in group], batch_size=4000)


def agencies_ensure(*, today: dt.date) -> list[Agency]:
    """The demo's agencies with their week, and what `make run` should show:
    Tunis Centre on reduced hours this week, Sfax Nord without paper bills."""
    agencies = []
    for spec in AGENCIES:
        agency, created = Agency.objects.get_or_create(
            code=spec["code"],
            defaults={
                "name_ar": spec["ar"], "name_fr": spec["fr"], "city": spec["city"], "address": spec["address"],
                "phone": spec["phone"], "latitude": Decimal(spec["lat"]), "longitude": Decimal(spec["lon"]),
            },
        )  # fmt: skip
        if created:
            AgencyHours.objects.bulk_create(
                AgencyHours(agency=agency, weekday=day, opens=dt.time.fromisoformat(opens),
                            closes=dt.time.fromisoformat(closes))
                for first, last, opens, closes in spec["hours"]
                for day in range(first, last + 1)
            )  # fmt: skip
        agencies.append(agency)
    tunis, sfax = agencies[0], agencies[1]
    if not tunis.hours_reductions.exists():
        AgencyHoursReduction.objects.create(
            agency=tunis, starts_on=today - dt.timedelta(days=1), ends_on=today + dt.timedelta(days=6),
            opens=dt.time(8, 30), closes=dt.time(12, 30),
            note_fr="Travaux de rénovation : l'agence n'ouvre que le matin. Vos factures restent sur ce site.",
            note_ar="أشغال تهيئة: الوكالة تفتح صباحًا فقط. فواتيركم متاحة دائمًا على هذا الموقع.",
        )  # fmt: skip
    if sfax.paperless_from is None:
        sfax.paperless_from = month_add(today.replace(day=1), -3)
        sfax.save(update_fields=["paperless_from"])
    return agencies


def paperless_rollout_seed(
    *, subscribers: list[Subscriber], bills: list[Bill], today: dt.date, rng: random.Random
) -> None:
    """Enough for the back office's roll-out figures to mean something: about half
    the subscribers with a verified SMS channel (some of them chose e-bills), and
    paper copies asked for over the last year. The demo subscriber is left out:
    the browser test registers and verifies her first channel itself."""
    verified_at = timezone.now()
    verified = [s for s in subscribers if rng.random() < 0.5]
    ContactChannel.objects.bulk_create(
        [
            ContactChannel(subscriber=s, kind=ChannelKind.SMS, address=s.user.phone, language=s.preferred_language,
                           verified_at=verified_at)
            for s in verified
        ],
        batch_size=1000,
    )  # fmt: skip
    chose = [s.pk for s in verified if rng.random() < 0.3]
    Subscriber.objects.filter(pk__in=chose).update(paperless=True)
    # Paper copies: a few per month, asked for some days after the bill came out.
    bills_by_subscriber: dict[int, list[Bill]] = {}
    for bill in bills:
        if bill.period >= month_add(today.replace(day=1), -12):
            bills_by_subscriber.setdefault(bill.account.subscriber_id, []).append(bill)
    asked = [
        rng.choice(bills_by_subscriber[s.pk]) for s in verified if s.pk in bills_by_subscriber and rng.random() < 0.35
    ]
    requests = PrintRequest.objects.bulk_create(
        [PrintRequest(bill=bill, agency_id=bill.account.subscriber.agency_id, status=PrintRequest.Status.PRINTED)
         for bill in asked],
        batch_size=1000,
    )  # fmt: skip
    for request in requests:  # requested_at is auto_now_add: set after the insert
        request.requested_at = timezone.make_aware(
            dt.datetime.combine(min(request.bill.issue_date + dt.timedelta(days=rng.randint(1, 20)), today),
                                dt.time(rng.randint(8, 15), rng.randint(0, 59)))
        )  # fmt: skip
        request.printed_at = request.requested_at + dt.timedelta(hours=rng.randint(1, 48))
    PrintRequest.objects.bulk_update(requests, ["requested_at", "printed_at"], batch_size=1000)


def demo_login_phone_verify() -> bool:
    """`make run`'s demo subscriber gets her login phone as a verified SMS channel,
    so the forgotten-password code (and every SMS alert) prints in the terminal
    without registering a number first. Not in demo_seed: the browser tests
    register and verify her first channel themselves. True when it was added."""
    subscriber = Subscriber.objects.filter(user__email=DEMO_SUBSCRIBER_EMAIL).first()
    if subscriber is None:
        return False
    _channel, created = ContactChannel.objects.get_or_create(
        subscriber=subscriber,
        kind=ChannelKind.SMS,
        address=DEMO_SUBSCRIBER_PHONE,
        defaults={"language": subscriber.preferred_language, "verified_at": timezone.now()},
    )
    return created


def _role_group(role: str) -> Group:
    # The groups come from the data migration (accounts.roles); re-synced here
    # only if someone deleted them by hand, so the demo still logs in.
    group = Group.objects.filter(name=role).first()
    if group is None:
        group = roles.roles_sync(group_model=Group, permission_model=Permission)[role]
    return group


class DemoSeedBusy(Exception):
    """Another process is seeding the demo right now."""


# pg_try_advisory_xact_lock key: "demoseed" read as an integer.
_SEED_LOCK = int.from_bytes(b"demoseed", "big") & 0x7FFFFFFFFFFFFFFF


@transaction.atomic
def demo_seed(*, subscribers: int = 500, months: int = 36, seed: int = 42) -> SeedReport:
    """Seed the demo once; a second call finds it and changes nothing, and one
    started while another is seeding raises DemoSeedBusy at once."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEED_LOCK])
            if not cursor.fetchone()[0]:
                raise DemoSeedBusy
    if User.objects.filter(email=DEMO_SUBSCRIBER_EMAIL).exists():
        return SeedReport(created=False, logins=demo_logins())
    rng = random.Random(seed)
    today = timezone.localdate()
    password = make_password(DEMO_PASSWORD)  # hashed once: PBKDF2 per user would take minutes

    agencies = agencies_ensure(today=today)
    plans = plans_ensure()
    plans_by_kind: dict[str, list[Plan]] = {}
    for plan in plans.values():
        if plan.is_active:
            plans_by_kind.setdefault(plan.kind, []).append(plan)

    User.objects.create(email=DEMO_ADMIN_EMAIL, password=password, is_staff=True, is_superuser=True, first_name="Admin")
    for email, role, first, last in DEMO_STAFF:
        staff = User.objects.create(email=email, password=password, is_staff=True, first_name=first, last_name=last)
        staff.groups.add(_role_group(role))
        if role != roles.AUDITOR:  # auditors read every agency
            staff.agencies.add(agencies[0])

    users, profiles = [], []
    for i in range(subscribers):
        first_ar, first_fr = rng.choice(FIRST_NAMES)
        family_ar, family_fr = rng.choice(FAMILY_NAMES)
        arabic = i % 2 == 0
        email = DEMO_SUBSCRIBER_EMAIL if i == 0 else f"subscriber{i:04d}@example.com"
        phone = DEMO_SUBSCRIBER_PHONE if i == 0 else f"+2162{1000000 + i:07d}"
        users.append(User(email=email, phone=phone, password=password, first_name=first_fr, last_name=family_fr))
        name_ar, name_fr = DEMO_SUBSCRIBER_NAME if i == 0 else (f"{first_ar} {family_ar}", f"{first_fr} {family_fr}")
        profiles.append(
            Subscriber(
                # An Arabic speaker's name is kept in Arabic; the others' in Latin
                # letters, with the Arabic beside it for the pages in Arabic.
                full_name=name_ar if arabic and i else name_fr,
                full_name_ar="" if arabic and i else name_ar,
                national_id=f"{10000000 + i:08d}",
                preferred_language=Language.FRENCH if i == 0 else (Language.ARABIC if arabic else Language.FRENCH),
                agency=agencies[0] if i == 0 else agencies[i % len(agencies)],
            )
        )  # fmt: skip
    users = User.objects.bulk_create(users, batch_size=1000)
    for user, profile in zip(users, profiles, strict=True):
        profile.user = user
    profiles = Subscriber.objects.bulk_create(profiles, batch_size=1000)

    # The demo subscriber has four services; others one, some two or three.
    holdings: list[tuple[Subscriber, str]] = [
        (profiles[0], kind)
        for kind in (ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.GAS, ServiceKind.MOBILE)
    ]
    kinds, weights = zip(*KIND_WEIGHTS, strict=True)
    for profile in profiles[1:]:
        count = 1 + (rng.random() < 0.35) + (rng.random() < 0.1)
        held: set[str] = set()
        while len(held) < count:
            held.add(rng.choices(kinds, weights=weights)[0])
        holdings.extend((profile, kind) for kind in sorted(held))
    numbers = account_numbers_reserve(count=len(holdings))
    accounts = []
    for n, ((profile, kind), number) in enumerate(zip(holdings, numbers, strict=True)):
        plan = plans_by_kind[kind][0] if profile is profiles[0] else rng.choice(plans_by_kind[kind])
        # Addresses in the subscriber's language; the demo subscriber's contracts
        # were written some in French, some in Arabic (n: their four accounts first).
        arabic = n % 2 == 1 if profile is profiles[0] else profile.preferred_language == Language.ARABIC
        accounts.append(
            ServiceAccount(
                number=number, subscriber=profile, kind=kind, plan=plan,
                meter_number=f"{kind[:1].upper()}{rng.randint(10**7, 10**8 - 1)}",
                service_address=demo_address(
                    number=rng.randint(1, 120), street=rng.choice(STREETS), city=profile.agency.city, arabic=arabic
                ),
                opened_on=month_add(today.replace(day=1), -months - rng.randint(1, 60)),
                status=ServiceAccount.Status.ACTIVE if rng.random() < 0.96 else ServiceAccount.Status.SUSPENDED,
            )
        )  # fmt: skip
    accounts = ServiceAccount.objects.bulk_create(accounts, batch_size=1000)

    # Demo subscriber: everything paid but the electricity bill of two months
    # ago (overdue) and a current water bill paid in part.
    paid = {(index, age): Decimal(1) for index in range(4) for age in range(months)}
    paid[(0, 1)] = Decimal(0)
    paid[(1, 0)] = Decimal("0.5")
    paid.update({(index, 0): Decimal(0) for index in (0, 2, 3)})
    consumptions, bills, lines = history_build(
        accounts=accounts, plans={p.pk: p for p in plans.values()}, months=months, today=today, rng=rng, paid=paid
    )
    history_save(consumptions, bills, lines)
    bills_flag_overdue(today=today)
    # A generator of its own: the bills above stay those the README describes.
    paperless_rollout_seed(subscribers=profiles[1:], bills=bills, today=today, rng=random.Random(seed + 1))
    return SeedReport(
        created=True,
        agencies=len(agencies),
        subscribers=len(profiles),
        accounts=len(accounts),
        bills=len(bills),
        consumption_rows=len(consumptions),
        logins=demo_logins(),
    )
