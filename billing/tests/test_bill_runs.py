"""Bill runs on PostgreSQL: the set-based SQL bills exactly what `bill_compute`
computes, announces exactly what `bill_announce` writes, never twice, and
survives crashes, a second worker and payments racing it."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone, translation

from accounts.models import ContactChannel
from accounts.tests.factories import AgencyFactory, SubscriberFactory
from billing import runs
from billing.messages import BILL_ISSUED, bill_context
from billing.models import (
    Bill,
    BillLine,
    BillRun,
    BillRunChunk,
    Plan,
    PlanChange,
    PlanLevy,
    ServiceAccount,
    ServiceKind,
    Unit,
)
from billing.runs import bill_run_chunk_process, bill_run_resume, bill_run_start, usage_for_billing
from billing.services import sms_alert_fee_lines, sms_alert_subscribe
from billing.tariffs import bill_compute, plan_terms
from core.dates import month_add
from core.money import quantize
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


# --- Crashes, re-runs, workers side by side ------------------------------------


def meters(count: int, *, credit: str = "0", channel: bool = True) -> list[ServiceAccount]:
    """`count` read electricity meters, each its own subscriber with a verified SMS channel."""
    plan = PlanFactory(code=f"P{count}-{ServiceAccount.objects.count()}")
    accounts = []
    for n in range(count):
        subscriber = SubscriberFactory()
        if channel:
            channels_for(subscriber, ("sms", ("ar", "fr", "en")[n % 3], True, True))
        account = ServiceAccountFactory(subscriber=subscriber, plan=plan, opened_on=OPENED, credit=Decimal(credit))
        reading(account, str(40 + 7 * n))
        accounts.append(account)
    return accounts


class Crash(RuntimeError):
    pass


def crash(chunk: BillRunChunk) -> None:
    raise Crash("the worker died")


def test_a_run_that_crashed_halfway_is_resumed_and_bills_each_account_once(db) -> None:
    accounts = meters(20)
    run = start(chunk_size=4)
    chunks = runs.bill_run_pending_chunks(run=run)
    assert len(chunks) == 5

    # given two chunks billed, a third whose worker dies after all its writes,
    # and two never reached
    for chunk_id in chunks[:2]:
        assert bill_run_chunk_process(chunk_id=chunk_id) == "done"
    with pytest.raises(Crash):
        bill_run_chunk_process(chunk_id=chunks[2], before_commit=crash)

    run.refresh_from_db()
    assert run.status == BillRun.Status.RUNNING
    assert (run.billed, run.failed, run.chunks_done) == (8, 4, 2)
    assert "the worker died" in run.errors
    assert Bill.objects.filter(period=PERIOD).count() == 8  # the third chunk rolled back whole
    assert Message.objects.count() == 8
    assert not Bill.objects.filter(account__in=accounts[8:12]).exists()

    # when the run is resumed
    assert bill_run_resume(run=run) == 3
    run_all(run)

    # then every account has one bill, one line set and one message
    assert run.status == BillRun.Status.FINISHED
    assert (run.accounts_in_scope, run.billed, run.failed, run.chunks_done, run.errors) == (20, 20, 0, 5, "")
    for account in accounts:
        assert Bill.objects.filter(account=account, period=PERIOD).count() == 1
    assert BillLine.objects.filter(bill__period=PERIOD).values("bill_id", "position").distinct().count() == (
        BillLine.objects.filter(bill__period=PERIOD).count()
    )
    assert Message.objects.count() == 20

    # and a new run of the same month finds everything billed
    again = start(chunk_size=7)
    run_all(again)
    assert (again.status, again.billed, again.already_billed) == (BillRun.Status.FINISHED, 0, 20)
    assert Bill.objects.filter(period=PERIOD).count() == 20
    assert Message.objects.count() == 20


def test_a_chunk_done_is_not_billed_again_when_its_task_comes_twice(db) -> None:
    meters(3)
    run = start()
    (chunk_id,) = runs.bill_run_pending_chunks(run=run)
    assert bill_run_chunk_process(chunk_id=chunk_id) == "done"
    assert bill_run_chunk_process(chunk_id=chunk_id) == "taken"
    assert BillRunChunk.objects.get(pk=chunk_id).attempts == 1
    assert Bill.objects.count() == 3


def test_a_failed_run_is_marked_failed_once_every_chunk_has_ended(db) -> None:
    meters(6)
    run = start(chunk_size=3)
    first, second = runs.bill_run_pending_chunks(run=run)
    with pytest.raises(Crash):
        bill_run_chunk_process(chunk_id=first, before_commit=crash)
    bill_run_chunk_process(chunk_id=second)
    run.refresh_from_db()
    assert (run.status, run.billed, run.failed) == (BillRun.Status.FAILED, 3, 3)
    assert run.finished_at is not None

    bill_run_resume(run=run)
    run_all(run)
    assert (run.status, run.billed, run.failed, run.errors) == (BillRun.Status.FINISHED, 6, 0, "")


def run_threads(*targets) -> list[BaseException]:
    """Each target in its own thread and database connection, started together."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                barrier.wait()
                target()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_run_bill_each_chunk_once() -> None:
    meters(30)
    run = start(chunk_size=3)
    chunk_ids = runs.bill_run_pending_chunks(run=run)
    outcomes: list[str] = []

    def worker(order: list[int]):  # type: ignore[no-untyped-def]
        return lambda: outcomes.extend(bill_run_chunk_process(chunk_id=c) for c in order)

    # both workers are handed every chunk (a redelivered queue), in opposite orders
    errors = run_threads(worker(chunk_ids), worker(chunk_ids[::-1]))

    assert errors == []
    assert outcomes.count("done") == 10 and len(outcomes) == 20
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.billed, run.already_billed) == (BillRun.Status.FINISHED, 10, 30, 0)
    assert set(BillRunChunk.objects.values_list("attempts", flat=True)) == {1}
    assert Bill.objects.filter(period=PERIOD).count() == 30
    assert Message.objects.count() == 30


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_bills_another_chunk_while_the_first_is_still_billing() -> None:
    meters(6)
    run = start(chunk_size=3)
    first, second = runs.bill_run_pending_chunks(run=run)
    inside, second_done = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def hold(chunk: BillRunChunk) -> None:
        inside.set()
        assert second_done.wait(20), "the second worker was held up by the first"

    def worker_a() -> None:
        outcomes["a"] = bill_run_chunk_process(chunk_id=first, before_commit=hold)

    def worker_b() -> None:
        assert inside.wait(20)
        outcomes["b"] = bill_run_chunk_process(chunk_id=second)
        second_done.set()

    errors = run_threads(worker_a, worker_b)

    assert errors == []
    assert outcomes == {"a": "done", "b": "done"}
    run.refresh_from_db()
    assert (run.status, run.billed) == (BillRun.Status.FINISHED, 6)


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_the_same_month_at_once_make_one_bill_per_account() -> None:
    meters(24)
    first, second = start(chunk_size=5), start(chunk_size=7)

    errors = run_threads(lambda: run_all(first), lambda: run_all(second))

    assert errors == []
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == BillRun.Status.FINISHED
    assert first.billed + second.billed == 24
    assert first.billed + first.already_billed == second.billed + second.already_billed == 24
    assert Bill.objects.filter(period=PERIOD).count() == 24
    assert Message.objects.count() == 24


@pytest.mark.django_db(transaction=True)
def test_payments_racing_the_run_never_use_credit_twice() -> None:
    from payments.services import payment_apply
    from payments.tests.factories import ProviderFactory

    bank = ProviderFactory(name="Banque", key_id="race")
    accounts = meters(24, channel=False)
    paid_at = timezone.now()
    # given money paid ahead: each account holds 5.000 of credit
    for account in accounts:
        payment_apply(provider=bank, reference=f"A-{account.pk}", account_number=account.number,
                      amount=Decimal("5.000"), currency="TND", paid_at=paid_at)  # fmt: skip
    run = start(chunk_size=4)

    def pay() -> None:
        for account in accounts:
            payment_apply(provider=bank, reference=f"B-{account.pk}", account_number=account.number,
                          amount=Decimal("7.000"), currency="TND", paid_at=paid_at)  # fmt: skip

    # when a worker bills while the bank pays each account again
    errors = run_threads(lambda: run_all(run), pay)

    # then every millime paid is on the bill or in the credit, once
    assert errors == []
    for account in ServiceAccount.objects.filter(pk__in=[a.pk for a in accounts]):
        bill = Bill.objects.get(account=account, period=PERIOD)
        assert account.credit >= 0
        assert bill.amount_paid + account.credit == Decimal("12.000"), account.number
        assert bill.amount_due == bill.amount_total - bill.amount_paid
    run.refresh_from_db()
    assert (run.status, run.billed) == (BillRun.Status.FINISHED, 24)


def test_announcing_the_period_again_after_a_run_sends_nothing_twice(db) -> None:
    from io import StringIO

    from django.core.management import call_command

    meters(5)
    run_all(start())
    out = StringIO()
    call_command("announce_bills", period=f"{PERIOD:%Y-%m}", stdout=out)
    assert out.getvalue().startswith("0 bill messages")
    assert Message.objects.count() == 5


def test_the_subscriber_sees_the_new_bill_at_once(subscriber_client, subscriber) -> None:
    from django.urls import reverse

    plan = PlanFactory()
    PlanLevy.objects.create(plan=plan, position=1, name_ar="معلوم التلفزة", name_fr="Redevance TV",
                            name_en="TV fee", amount=Decimal("1.000"))  # fmt: skip
    read = ServiceAccountFactory(subscriber=subscriber, plan=plan, opened_on=OPENED)
    reading(read, "75")
    unread = ServiceAccountFactory(subscriber=subscriber, plan=plan, opened_on=OPENED)
    reading(unread, "120", period=month(1))
    assert subscriber_client.get(reverse("billing:bill_list")).content.count(PERIOD.strftime("%Y%m").encode()) == 0

    run_all(start())

    page = subscriber_client.get(reverse("billing:bill_list")).content.decode()
    for account in (read, unread):
        bill = Bill.objects.get(account=account, period=PERIOD)
        assert bill.number in page
    estimated = Bill.objects.get(account=unread)
    detail = subscriber_client.get(reverse("billing:bill_detail", args=[estimated.number])).content.decode()
    assert 'data-testid="estimated"' in detail and "Redevance TV" in detail


def test_the_command_bills_a_month_with_a_progress_bar(db) -> None:
    from io import StringIO

    from django.core.management import call_command

    agency = AgencyFactory(code="SFX-N")
    accounts = meters(4)
    for account in accounts[:3]:
        account.subscriber.agency = agency
        account.subscriber.save()
    ServiceAccount.objects.filter(pk=accounts[0].pk).update(billing_cycle=2)
    out = StringIO()

    call_command("bill_run", period=f"{PERIOD:%Y-%m}", agency="SFX-N", cycle=1, chunk_size=1, language="en", stdout=out)

    text = out.getvalue()
    assert "[" + "#" * 30 + "] 100%" in text and "chunks 2/2" in text
    assert "Finished: 2 billed on a reading" in text
    assert set(Bill.objects.values_list("account_id", flat=True)) == {accounts[1].pk, accounts[2].pk}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": "2026-13"}, "YYYY-MM"),
        ({"period": "next month"}, "YYYY-MM"),
        ({"period": "2999-01"}, "not begun"),
        ({"period": "2026-01", "agency": "NOPE"}, "No agency"),
        ({"period": "2026-01", "cycle": 40}, "1 to 31"),
        ({"period": "2026-01", "issue_date": "tomorrow"}, "YYYY-MM-DD"),
        ({}, "--period is required"),
        ({"resume": 999999}, "no bill run"),
    ],
)
def test_the_command_refuses_bad_input_with_a_sentence(db, options: dict, message: str) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("bill_run", language="en", **options)


@pytest.mark.parametrize(
    ("language", "period_word", "summary", "refusal"),
    [
        ("fr", "Facturation ", "Terminée : 2 facturés sur relevé, 1 estimés", "Aucune agence"),
        ("ar", "دورة الفوترة ", "منتهية: 2 مفوترة على قراءة، 1 تقديرية", "لا توجد وكالة"),
    ],
)
def test_the_command_speaks_the_language_asked_for(db, language, period_word, summary, refusal) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    meters(2)
    reading(ServiceAccountFactory(opened_on=OPENED), "90", period=month(1))  # not read: estimated
    out = StringIO()

    with translation.override("en"):  # the caller's language is not the command's
        call_command("bill_run", period=f"{PERIOD:%Y-%m}", inline=True, language=language, stdout=out)
        with pytest.raises(CommandError, match=refusal):
            call_command("bill_run", period=f"{PERIOD:%Y-%m}", agency="NOPE", language=language)

    text = out.getvalue()
    assert text.startswith(period_word)
    assert summary in text
    assert "billed on a reading" not in text


def test_the_commands_help_reads_in_the_operators_language() -> None:
    from billing.management.commands.bill_run import Command

    with translation.override("fr"):
        text = Command().create_parser("manage.py", "bill_run").format_help()
    assert "Facture un mois pour chaque compte" in text and "le mois à facturer" in text


def test_the_command_speaks_the_deployments_language_by_default(db, settings) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.LANGUAGE_CODE = "ar"
    meters(1)
    out = StringIO()
    call_command("bill_run", period=f"{PERIOD:%Y-%m}", inline=True, stdout=out)
    assert "منتهية: 1 مفوترة على قراءة" in out.getvalue()
    with pytest.raises(CommandError, match="صيغة"):
        call_command("bill_run", period="2026-13")


def test_a_run_whose_tasks_were_lost_is_handed_out_again(db, django_capture_on_commit_callbacks) -> None:
    from billing.tasks import bill_runs_redrive

    meters(4)
    run = start(chunk_size=2)
    first, _second = runs.bill_run_pending_chunks(run=run)
    bill_run_chunk_process(chunk_id=first)
    # the second chunk's task was lost (a broker emptied); nothing has moved for a while
    assert bill_runs_redrive() == 0  # not stale yet
    BillRunChunk.objects.filter(pk=first).update(finished_at=timezone.now() - dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert bill_runs_redrive() == 1

    run.refresh_from_db()
    assert (run.status, run.billed) == (BillRun.Status.FINISHED, 4)
    assert bill_runs_redrive() == 0


def test_a_month_is_billed_on_the_plan_in_force_on_its_last_day(db) -> None:
    """A change that took effect after the month (the daily task has already
    switched the account) does not reprice the month: the run bills it on the
    plan before, as bill_issue does (plan_changes.plan_id_for_period)."""
    (account,) = meters(1)
    before = account.plan
    after = PlanFactory(code="P-AFTER", monthly_fee=before.monthly_fee + Decimal("7.000"))
    PlanChange.objects.create(
        account=account, kind=account.kind, from_plan=before, to_plan=after, status=PlanChange.Status.APPLIED,
        effective_date=month_add(PERIOD, 1), applied_at=timezone.now(), requested_by=account.subscriber.user,
        currency="TND",
    )  # fmt: skip
    ServiceAccount.objects.filter(pk=account.pk).update(plan=after)

    run_all(start())

    fee = BillLine.objects.get(bill__account=account, bill__period=PERIOD, kind=BillLine.Kind.FIXED_FEE)
    assert fee.amount == before.monthly_fee


# --- Plan changes at once: the run bills their proration as bill_issue does --------


def line_rows(bill: Bill) -> list[tuple]:
    return list(
        bill.lines.order_by("position").values_list(
            "position", "kind", "tier", "quantity", "unit", "unit_price", "amount", "levy_id"
        )
    )


def test_the_run_bills_the_proration_of_an_immediate_plan_change_as_bill_issue_does(db) -> None:
    from billing.plan_changes import plan_change_request
    from billing.services import bill_issue

    dear = PlanFactory(code="E-45", monthly_fee=Decimal("45.000"), allows_immediate_change=True)
    PlanLevy.objects.create(plan=dear, position=1, name_ar="معلوم", name_fr="Redevance", name_en="Levy",
                            amount=Decimal("1.000"))  # fmt: skip
    cheap = PlanFactory(code="E-25", monthly_fee=Decimal("25.000"), allows_immediate_change=True)
    PlanLevy.objects.create(plan=cheap, position=1, name_ar="معلوم", name_fr="Redevance", name_en="Levy",
                            amount=Decimal("1.000"))  # fmt: skip

    def twins(*, changed_on: dt.date, month_billed: bool) -> list[ServiceAccount]:
        pair = []
        for _ in range(2):
            account = ServiceAccountFactory(plan=dear, opened_on=OPENED)
            reading(account, "120")
            if month_billed:
                BillFactory(account=account, period=changed_on.replace(day=1))
            plan_change_request(account=account, to_plan=cheap, requested_by=account.subscriber.user,
                                mode=PlanChange.Mode.IMMEDIATE, today=changed_on)  # fmt: skip
            account.refresh_from_db()
            pair.append(account)
        return pair

    # given: moved from 45.000 to 25.000 on the 15th of the month billed (14 days on the
    # old plan), and on the 10th of the month before, which was billed already (the
    # new plan's days of that month come on this bill, as a credit)
    this_month = twins(changed_on=PERIOD.replace(day=15), month_billed=False)
    last_month = twins(changed_on=month(1).replace(day=10), month_billed=True)
    # the single-account path bills one of each pair
    by_issue = [bill_issue(account=pair[0], period=PERIOD, issue_date=ISSUE) for pair in (this_month, last_month)]

    # when the run bills the others
    run = start()
    run_all(run)

    # then each run's bill has the same lines and totals as its twin's
    assert (run.billed, run.already_billed) == (2, 2)
    for pair, issued in zip((this_month, last_month), by_issue, strict=True):
        billed = Bill.objects.get(account=pair[1], period=PERIOD)
        assert line_rows(billed) == line_rows(issued)
        assert (billed.amount_lines, billed.amount_tax, billed.amount_total, billed.amount_due) == (
            issued.amount_lines, issued.amount_tax, issued.amount_total, issued.amount_due,
        )  # fmt: skip

    # worked out: (45 - 25) x 14 / days in the month, and (25 - 45) x (days - 9) / days of the month before
    days, days_before = runs.period_end(PERIOD).day, runs.period_end(month(1)).day
    proration = BillLine.objects.get(bill__account=this_month[1], kind=BillLine.Kind.PRORATION)
    assert (proration.quantity, proration.amount) == (14, quantize(Decimal(20) * 14 / days, "TND"))
    credit = BillLine.objects.get(bill__account=last_month[1], kind=BillLine.Kind.PRORATION)
    assert credit.quantity == days_before - 9
    assert credit.amount == quantize(Decimal(-20) * (days_before - 9) / days_before, "TND") < 0
    # lines in bill order: the fee, the tranches, the proration, then the levy
    kinds = [row[1] for row in line_rows(Bill.objects.get(account=this_month[1], period=PERIOD))]
    assert kinds == ["fixed_fee", "consumption", "consumption", "consumption", "proration", "levy"]


# --- The plan-change preview is the bill the run then makes ----------------------


@pytest.fixture
def levied_plans(db) -> tuple[Plan, Plan]:
    """Two electricity plans with levies and their own VAT rate: what a preview
    priced without bill_compute would get wrong."""
    plans = []
    for code, fee, vat in (("E-OLD", "9.000", "0.13"), ("E-NEW", "4.500", "0.07")):
        plan = PlanFactory(code=code, monthly_fee=Decimal(fee), vat_rate=Decimal(vat), allows_immediate_change=True,
                           tiers=[(0, 100, "0.080"), (100, None, "0.150")])  # fmt: skip
        PlanLevy.objects.create(plan=plan, position=1, name_ar="معلوم بلدي", name_fr="Taxe municipale",
                                name_en="Municipal levy", amount=Decimal("0.750"), taxable=True)  # fmt: skip
        PlanLevy.objects.create(plan=plan, position=2, name_ar="معلوم التلفزة", name_fr="Redevance TV",
                                name_en="TV fee", amount=Decimal("1.000"), taxable=False)  # fmt: skip
        plans.append(plan)
    return plans[0], plans[1]


@pytest.mark.parametrize("mode", [PlanChange.Mode.IMMEDIATE, PlanChange.Mode.NEXT_PERIOD])
def test_the_preview_is_the_bill_the_run_then_makes(levied_plans, mode: str) -> None:
    from billing.plan_changes import plan_change_preview, plan_change_request, plan_changes_apply_due

    old, new = levied_plans
    account = ServiceAccountFactory(plan=old, opened_on=OPENED)
    # the SMS alert service's yearly fee falls on the bill previewed
    sms_alert_subscribe(account=account, started_on=PERIOD.replace(year=PERIOD.year - 1, day=3))
    reading(account, "130", period=month(2))
    reading(account, "130", period=month(1))  # the last consumption: the preview's usage
    # at once on the 12th of the month billed; from the next period when asked on the 20th of the month before
    today = PERIOD.replace(day=12) if mode == PlanChange.Mode.IMMEDIATE else month(1).replace(day=20)

    # given the preview, and the change confirmed the same day
    preview = plan_change_preview(account=account, to_plan=new, mode=mode, today=today)
    plan_change_request(account=account, to_plan=new, requested_by=account.subscriber.user, mode=mode, today=today)
    plan_changes_apply_due(today=PERIOD)
    # when the month's reading is what the preview assumed, and the run bills it
    reading(account, "130")
    run_all(start())

    # then the bill is the preview's estimate on the new plan, line for line
    bill = Bill.objects.get(account=account, period=PERIOD)
    estimate = preview.estimate_new
    assert estimate.period == PERIOD
    assert (bill.amount_lines, bill.amount_tax, bill.amount_total) == (
        estimate.amount_lines, estimate.amount_tax, estimate.amount_total,
    )  # fmt: skip
    assert [row[1:7] for row in line_rows(bill)] == [
        (d.kind, d.tier, d.quantity, d.unit, d.unit_price, d.amount) for d in estimate.lines
    ]
    kinds = [d.kind for d in estimate.lines]
    assert kinds.count("levy") == 2 and kinds.count("fee") == 1
    assert kinds.count("proration") == (1 if mode == PlanChange.Mode.IMMEDIATE else 0)
    # and the current plan's estimate is priced the same way: its levies, its own VAT rate
    old_estimate = preview.estimate_old
    assert [d.kind for d in old_estimate.lines].count("levy") == 2
    taxable = sum(d.amount for d in old_estimate.lines if d.taxable)  # all but the TV fee
    assert old_estimate.amount_tax == quantize(taxable * Decimal("0.13"), "TND")
