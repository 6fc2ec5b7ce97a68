"""Bill runs on PostgreSQL: the set-based SQL bills exactly what `bill_compute`
computes, announces exactly what `bill_announce` writes, never twice, and
survives crashes, a second worker and payments racing it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ContactChannel
from accounts.tests.factories import SubscriberFactory
from billing import runs
from billing.messages import BILL_ISSUED, bill_context
from billing.models import Bill, BillRun, Plan, PlanLevy, ServiceAccount, ServiceKind, Unit
from billing.runs import bill_run_chunk_process, bill_run_start, usage_for_billing
from billing.services import sms_alert_fee_lines, sms_alert_subscribe
from billing.tariffs import bill_compute, plan_terms
from core.dates import month_add
from notifications.models import Message
from notifications.services import message_rows

from .factories import BillFactory, ConsumptionFactory, PlanFactory, ServiceAccountFactory

# Last month, as an operator bills it (a run refuses a month not begun).
ISSUE = timezone.localdate()
PERIOD = month_add(ISSUE, -1)
OPENED = dt.date(2020, 1, 1)


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings) -> None:
    # Messages are due at once, so their rows compare whatever the hour of the test.
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))
    settings.SELFCARE_VAT_RATE = "0.19"
    settings.SELFCARE_CURRENCY = "TND"


def run_all(run: BillRun) -> None:
    for chunk_id in runs.bill_run_pending_chunks(run=run):
        bill_run_chunk_process(chunk_id=chunk_id)
    run.refresh_from_db()


def start(**kwargs) -> BillRun:
    return bill_run_start(period=PERIOD, issue_date=ISSUE, **kwargs)


def reading(account: ServiceAccount, quantity: str, period: dt.date = PERIOD, unit: str | None = None) -> None:
    ConsumptionFactory(account=account, period=period, unit=unit or account.unit, quantity=Decimal(quantity))


def month(n: int) -> dt.date:
    return month_add(PERIOD, -n)


def channels_for(subscriber, *specs) -> None:
    now = timezone.now()
    for n, (kind, language, verified, wants_bills) in enumerate(specs):
        address = (
            f"s{subscriber.pk}-{n}@example.com" if kind == "email" else f"+216209{subscriber.pk % 1000:03d}{n:02d}"
        )
        ContactChannel.objects.create(
            subscriber=subscriber, kind=kind, address=address, language=language,
            verified_at=now if verified else None, wants_bills=wants_bills,
        )  # fmt: skip


@pytest.fixture
def sample(db) -> dict:
    """Every kind of plan and account a run meets, tranche edges included."""
    elec = PlanFactory(
        code="E", tiers=[(0, 50, "0.062"), (50, 100, "0.096"), (100, 200, "0.176"), (200, None, "0.218")]
    )
    PlanLevy.objects.create(plan=elec, position=1, name_ar="معلوم بلدي", name_fr="Taxe municipale",
                            name_en="Municipal levy", amount=Decimal("0.500"), taxable=True)  # fmt: skip
    PlanLevy.objects.create(plan=elec, position=2, name_ar="معلوم التلفزة", name_fr="Redevance TV",
                            name_en="TV fee", amount=Decimal("1.000"), taxable=False)  # fmt: skip
    water = PlanFactory(code="W", kind=ServiceKind.WATER, vat_rate=Decimal("0.07"), monthly_fee=Decimal("1.200"),
                        tiers=[(0, 20, "0.200"), (20, 40, "0.745"), (40, None, "1.040")])  # fmt: skip
    gas = PlanFactory(code="G", kind=ServiceKind.GAS, tiers=[(0, 30, "0.236"), (30, None, "0.300")])
    mobile = PlanFactory(
        code="M", kind=ServiceKind.MOBILE, monthly_fee=Decimal("25.000"), included_minutes=300, included_sms=100,
        included_data_gb=Decimal(10), price_per_minute=Decimal("0.150"), price_per_sms=Decimal(0),
        price_per_gb=Decimal("2.000"),
    )  # fmt: skip
    fixed = PlanFactory(code="F", kind=ServiceKind.FIXED_LINE, monthly_fee=Decimal("12.000"), included_minutes=600,
                        price_per_minute=Decimal("0.060"))  # fmt: skip
    internet = PlanFactory(code="I", kind=ServiceKind.INTERNET, monthly_fee=Decimal("39.000"),
                           price_per_gb=Decimal("1.000"), vat_rate=Decimal(0))  # fmt: skip

    ar, fr, en = (SubscriberFactory(preferred_language=lang) for lang in ("ar", "fr", "fr"))
    channels_for(ar, ("sms", "ar", True, True), ("whatsapp", "ar", True, True), ("email", "ar", True, True))
    channels_for(fr, ("sms", "fr", True, True), ("email", "fr", True, True), ("sms", "en", False, True),
                 ("whatsapp", "fr", True, False))  # fmt: skip
    channels_for(en, ("sms", "en", True, True), ("whatsapp", "en", True, True), ("email", "en", True, True))
    owners = [ar, fr, en]

    accounts: dict[str, ServiceAccount] = {}

    def account(name: str, plan: Plan, **kwargs) -> ServiceAccount:
        owner = owners[len(accounts) % 3]
        kwargs.setdefault("opened_on", OPENED)
        accounts[name] = ServiceAccountFactory(subscriber=owner, kind=plan.kind, plan=plan, **kwargs)
        return accounts[name]

    # Electricity at and around the tranche edges.
    for quantity in ("0", "50", "50.001", "100", "100.5", "199.999", "200", "1234.567"):
        reading(account(f"elec-{quantity}", elec), quantity)
    reading(account("water-39", water), "39")
    reading(account("water-40.5", water), "40.5")
    reading(account("gas", gas), "31.25")
    # Telecom: below and beyond each allowance, and a month without usage.
    mob = account("mobile-over", mobile)
    for unit, quantity in ((Unit.MINUTES, "321"), (Unit.SMS, "150"), (Unit.GB, "12.345")):
        reading(mob, quantity, unit=unit)
    reading(account("mobile-under", mobile), "9.5", unit=Unit.GB)
    account("mobile-silent", mobile)
    reading(account("fixed", fixed), "655", unit=Unit.MINUTES)
    reading(account("internet", internet), "7.5", unit=Unit.GB)
    for n in range(3):  # amounts past a thousand, grouped in each language
        reading(account(f"internet-big-{n}", internet), "1999.5", unit=Unit.GB)
    # Meters not read this month: estimated from the last readings, or skipped.
    est = account("elec-estimated", elec)
    for n, quantity in enumerate(("100", "120", "130", "90", "80", "70", "500"), start=1):
        reading(est, quantity, period=month(n))  # the 7th reading back is not averaged
    reading(account("water-estimated-once", water), "33.333", period=month(3))
    account("elec-never-read", elec)
    # Credit: more than the bill, less than the bill.
    reading(account("elec-rich", elec, credit=Decimal("500.000")), "80")
    reading(account("elec-some-credit", elec, credit=Decimal("3.210")), "80")
    # The SMS alert fee's anniversary month.
    alerted = account("elec-alerts", elec)
    reading(alerted, "60")
    sms_alert_subscribe(account=alerted, started_on=PERIOD.replace(year=PERIOD.year - 1, day=14))
    # Out of scope, or done already.
    reading(account("suspended", elec, status=ServiceAccount.Status.SUSPENDED), "60")
    reading(account("prepaid", elec, billing_mode=ServiceAccount.BillingMode.PREPAID), "60")
    reading(account("opened-later", elec, opened_on=runs.period_end(PERIOD) + dt.timedelta(days=1)), "60")
    billed = account("already-billed", elec)
    reading(billed, "60")
    BillFactory(account=billed, period=PERIOD)
    return {"accounts": accounts, "subscribers": owners}


IN_SCOPE = 26  # active, postpaid, opened before the period ended


def expected_bills(accounts: dict[str, ServiceAccount]) -> dict[int, tuple]:
    """What bill_compute says, account by account, before the run."""
    expected = {}
    for account in accounts.values():
        found = usage_for_billing(account=account, period=PERIOD)
        if found is None:
            continue
        usage, estimated = found
        plan = Plan.objects.prefetch_related("tiers", "levies").get(pk=account.plan_id)
        draft = bill_compute(
            plan=plan_terms(plan), usage=usage, period=PERIOD, credit=account.credit, currency="TND",
            extra_lines=sms_alert_fee_lines(account=account, period=PERIOD),
        )  # fmt: skip
        expected[account.pk] = (draft, estimated)
    return expected


def test_the_sql_run_bills_what_bill_compute_computes(sample) -> None:
    accounts = sample["accounts"]
    in_scope = [a for name, a in accounts.items() if name not in ("suspended", "prepaid", "opened-later")]
    expected = {pk: e for pk, e in expected_bills(accounts).items() if pk in {a.pk for a in in_scope}}
    del expected[accounts["already-billed"].pk]
    credit_before = {a.pk: a.credit for a in in_scope}

    run = start(chunk_size=7)
    run_all(run)

    assert run.status == BillRun.Status.FINISHED
    assert run.chunks_done == run.chunks_total == 4
    assert run.accounts_in_scope == len(in_scope) == IN_SCOPE
    assert (run.billed, run.estimated, run.already_billed, run.skipped, run.failed) == (22, 2, 1, 1, 0)
    assert not Bill.objects.filter(account=accounts["elec-never-read"]).exists()
    for name in ("suspended", "prepaid", "opened-later"):
        assert not Bill.objects.filter(account=accounts[name]).exists(), name

    bills = {b.account_id: b for b in Bill.objects.filter(period=PERIOD).exclude(account=accounts["already-billed"])}
    assert bills.keys() == expected.keys()
    for account_id, bill in bills.items():
        draft, estimated = expected[account_id]
        account = ServiceAccount.objects.get(pk=account_id)
        assert bill.number == f"{account.number}-{PERIOD:%Y%m}"
        assert (bill.issue_date, bill.due_date, bill.currency) == (ISSUE, ISSUE + dt.timedelta(days=20), "TND")
        assert (bill.amount_lines, bill.amount_tax, bill.amount_total) == (
            draft.amount_lines, draft.amount_tax, draft.amount_total,
        ), account_id  # fmt: skip
        assert (bill.amount_paid, bill.amount_due) == (draft.credit_used, draft.amount_due)
        assert bill.is_estimated is estimated
        assert bill.status == ("paid" if draft.amount_due == 0 else "partially_paid" if draft.credit_used else "issued")
        assert account.credit == credit_before[account_id] - draft.credit_used
        lines = list(bill.lines.order_by("position"))
        assert [
            (line.position, line.kind, line.tier, line.quantity, line.unit, line.unit_price, line.amount, line.levy_id)
            for line in lines
        ] == [
            (n, d.kind, d.tier, d.quantity, d.unit, d.unit_price, d.amount, d.levy_id)
            for n, d in enumerate(draft.lines, start=1)
        ], account_id

    # A few worked figures, so agreement is not agreement on a wrong answer.
    edge = bills[accounts["elec-50.001"].pk]
    assert [(line.tier, line.quantity, line.amount) for line in edge.lines.filter(kind="consumption")] == [
        (1, Decimal("50.000"), Decimal("3.100")),  # 50 × 0.062
        (2, Decimal("0.001"), Decimal("0.000")),  # 0.001 × 0.096 = 0.000096 → 0.000
    ]
    # 6 readings back averaged: (100 + 120 + 130 + 90 + 80 + 70) / 6 = 98.333…
    estimate = bills[accounts["elec-estimated"].pk]
    assert estimate.is_estimated
    assert sum(line.quantity for line in estimate.lines.filter(kind="consumption")) == Decimal("98.333")
    rich = bills[accounts["elec-rich"].pk]
    assert (rich.status, rich.amount_due) == ("paid", 0)


def test_the_run_announces_exactly_what_bill_announce_writes(sample) -> None:
    run = start()
    run_all(run)

    bills = (
        Bill.objects.filter(period=PERIOD)
        .select_related("account")
        .exclude(account=sample["accounts"]["already-billed"])
    )
    written = {m.dedupe_key: m for m in Message.objects.filter(event="bill_issued")}
    expected = {}
    for bill in bills.select_related("account__subscriber"):
        subscriber = bill.account.subscriber
        for row in message_rows(
            event=BILL_ISSUED, subscriber=subscriber, object_key=bill.number, context=bill_context(bill),
            reference=bill.account.number, channels=subscriber.channels.all(), now=timezone.now(),
        ):  # fmt: skip
            expected[row.dedupe_key] = row
    # Every channel that is verified and wants bills: 3 for the Arabic and English
    # subscribers, 2 for the French one (one unverified, one that wants no bills).
    ar, fr, en = sample["subscribers"]
    per_subscriber = {ar.pk: 3, fr.pk: 2, en.pk: 3}
    assert len(expected) == sum(per_subscriber[b.account.subscriber_id] for b in bills)
    assert {(m.language, m.channel_kind) for m in written.values()} == {
        ("ar", "sms"), ("ar", "whatsapp"), ("ar", "email"), ("fr", "sms"), ("fr", "email"),
        ("en", "sms"), ("en", "whatsapp"), ("en", "email"),
    }  # fmt: skip
    assert written.keys() == expected.keys()
    fields = ["event", "subscriber_id", "reference", "channel_id", "channel_kind", "address", "language", "subject",
              "body", "encoding", "segments", "urgent", "template_name", "template_params", "status", "attempts"]  # fmt: skip
    for key, row in expected.items():
        message = written[key]
        assert {f: getattr(message, f) for f in fields} == {f: getattr(row, f) for f in fields}, key
        assert message.next_attempt_at == message.created_at
    assert sum(c.messages for c in run.chunks.all()) == len(written)
