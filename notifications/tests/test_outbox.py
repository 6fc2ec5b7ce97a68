from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ChannelKind
from billing.messages import BILL_ISSUED, DUE_REMINDER, OVERDUE_NOTICE, bill_announce
from billing.models import Bill, BillLine, Consumption, PrintRequest
from billing.services import bill_issue, sms_alert_fee_lines, sms_alert_subscribe
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.testing import run_in_threads
from notifications import relay, services, tasks
from notifications.models import Message
from notifications.services import message_resend

from .factories import VerifiedChannelFactory

TUNIS = zoneinfo.ZoneInfo("Africa/Tunis")


@pytest.fixture
def alice_channels(subscriber):
    return [
        VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, language="ar"),
        VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.EMAIL, address="alice@example.com"),
    ]


@pytest.mark.django_db
def test_issuing_a_bill_writes_one_message_per_channel_that_wants_bills(subscriber, alice_channels) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.WHATSAPP, wants_bills=False)
    account = ServiceAccountFactory(subscriber=subscriber)
    bill = bill_issue(account=account, period=dt.date(2026, 10, 1))
    rows = Message.objects.filter(event=BILL_ISSUED.name)
    assert sorted(rows.values_list("channel_kind", flat=True)) == ["email", "sms"]
    sms = rows.get(channel_kind="sms")
    assert sms.language == "ar" and account.number in sms.body and sms.segments in (1, 2)
    assert f"/b/{bill.number}" in sms.body


@pytest.mark.django_db
def test_announcing_again_sends_nothing_twice(subscriber, alice_channels) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    assert bill_announce(bill=bill) == 2
    assert bill_announce(bill=bill) == 0
    call_command("announce_bills", period=bill.period.strftime("%Y-%m"))
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_announce_bills_refuses_a_malformed_period() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("announce_bills", period="10/2026")


@pytest.mark.django_db
def test_the_messages_of_a_rolled_back_event_vanish_with_it(subscriber, alice_channels) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    with pytest.raises(RuntimeError), transaction.atomic():
        bill_issue(account=account, period=dt.date(2026, 10, 1))
        raise RuntimeError("the bill run fails after issuing")
    assert not Bill.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_sms_waits_for_the_morning_but_email_and_codes_do_not(subscriber, alice_channels, phone_providers) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    night = dt.datetime(2026, 11, 21, 22, 30, tzinfo=TUNIS)
    bill_announce(bill=bill, now=night)
    sms = Message.objects.get(channel_kind="sms")
    email = Message.objects.get(channel_kind="email")
    assert sms.next_attempt_at == dt.datetime(2026, 11, 22, 8, 0, tzinfo=TUNIS)
    assert email.next_attempt_at == night
    # Claimed at night: only the e-mail goes.
    assert relay.outbox_claim(limit=10, now=night) == [email.pk]


@pytest.mark.django_db
def test_under_make_run_a_bill_announced_at_night_is_printed_at_once(
    subscriber, alice_channels, monkeypatch, capsys, django_capture_on_commit_callbacks
) -> None:
    # given the demo's console providers (make run's) and the operator's clock at 22:30
    night = dt.datetime(2026, 11, 21, 22, 30, tzinfo=TUNIS)
    monkeypatch.setattr(timezone, "now", lambda: night)
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.WHATSAPP, address="+21620555666")
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))

    # when the bills are announced; make run has no beat, only the relay the commit kicks
    with django_capture_on_commit_callbacks(execute=True):
        call_command("announce_bills", period=bill.period.strftime("%Y-%m"))

    # then nothing waits for the morning: each message is sent and printed in the terminal
    assert dict(Message.objects.values_list("channel_kind", "status")) == {
        "sms": Message.Status.SENT, "whatsapp": Message.Status.SENT, "email": Message.Status.SENT,
    }  # fmt: skip
    printed = capsys.readouterr().out
    assert f"[sms → {alice_channels[0].address}]" in printed and "[whatsapp → +21620555666]" in printed


@pytest.mark.django_db
def test_quiet_hours_come_from_settings(settings, subscriber, alice_channels, phone_providers) -> None:
    settings.SELFCARE_QUIET_HOURS = (dt.time(22, 0), dt.time(7, 0))
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    bill_announce(bill=bill, now=dt.datetime(2026, 11, 22, 6, 0, tzinfo=TUNIS))
    assert Message.objects.get(channel_kind="sms").next_attempt_at == dt.datetime(2026, 11, 22, 7, 0, tzinfo=TUNIS)


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_never_claim_the_same_message(subscriber) -> None:
    # Written straight to the table: announcing would also kick the (eager) relay.
    now = dt.datetime.now(tz=TUNIS)
    Message.objects.bulk_create(
        Message(
            dedupe_key=f"test:{i}", event=BILL_ISSUED.name, subscriber=subscriber, channel_kind=ChannelKind.EMAIL,
            address=f"a{i}@example.com", language="fr", body="x", next_attempt_at=now,
        )
        for i in range(40)
    )  # fmt: skip
    claimed: list[list[int]] = []

    def claim() -> None:
        while ids := relay.outbox_claim(limit=3):
            claimed.append(ids)

    assert run_in_threads(claim, 4) == []
    flat = [pk for batch in claimed for pk in batch]
    assert len(flat) == len(set(flat)) == 40


@pytest.mark.django_db
def test_a_sent_message_is_not_sent_again_by_a_second_run(subscriber, alice_channels, mailoutbox) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    noon = dt.datetime(2026, 11, 21, 12, 0, tzinfo=TUNIS)
    bill_announce(bill=bill, now=noon)
    ids = relay.outbox_claim(limit=10, now=noon)
    relay.messages_send(ids)
    relay.messages_send(ids)  # the same task delivered twice by the broker
    assert len(mailoutbox) == 1
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.SENT}


@pytest.mark.django_db
def test_a_stuck_sending_row_is_redriven_after_the_stale_delay(subscriber, alice_channels, settings) -> None:
    settings.SELFCARE_OUTBOX_STALE_SECONDS = 60
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    now = dt.datetime.now(tz=TUNIS)
    ids = relay.outbox_claim(limit=10, now=now)
    assert relay.outbox_redrive(now=now + dt.timedelta(seconds=30)) == 0
    assert relay.outbox_redrive(now=now + dt.timedelta(seconds=61)) == len(ids)
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.PENDING}


@pytest.mark.django_db
def test_a_failed_message_can_be_sent_again_from_the_back_office(
    client: Client, superuser, subscriber, alice_channels
) -> None:
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    failed = Message.objects.first()
    Message.objects.filter(pk=failed.pk).update(status=Message.Status.FAILED, attempts=6, last_error="Rejected")
    client.force_login(superuser)
    response = client.post(
        reverse("admin:notifications_message_changelist"), {"action": "resend", "_selected_action": [failed.pk]}
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) in {
        (Message.Status.PENDING, 0, ""),
        (Message.Status.SENT, 1, ""),  # eager relay in tests: sent straight away
    }
    assert not message_resend(message=failed)  # only failed rows go back


@pytest.mark.django_db
def test_messages_page_lists_alices_messages_and_nothing_of_bobs(
    client: Client, subscriber, other_subscriber, alice_channels
) -> None:
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    client.force_login(subscriber.user)
    page = client.get(reverse("notifications:messages"))
    assert len(page.context["page"]) == 2
    client.force_login(other_subscriber.user)
    assert len(client.get(reverse("notifications:messages")).context["page"]) == 0


@pytest.mark.django_db
def test_a_paperless_subscriber_asks_for_a_paper_copy_for_her_agency(client: Client, subscriber) -> None:
    subscriber.paperless = True
    subscriber.save()
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(subscriber.user)
    url = reverse("billing:bill_paper_copy", args=[bill.number])
    assert client.post(url).status_code == 302
    assert client.post(url).status_code == 302  # twice is one request
    request = PrintRequest.objects.get()
    assert (request.bill, request.agency, request.requested_by) == (bill, subscriber.agency, subscriber.user)


@pytest.mark.django_db
def test_bob_cannot_ask_for_a_copy_of_alices_bill(client: Client, subscriber, other_subscriber) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(other_subscriber.user)
    assert client.post(reverse("billing:bill_paper_copy", args=[bill.number])).status_code == 404
    assert not PrintRequest.objects.exists()


@pytest.mark.django_db
def test_a_clerk_marks_paper_copies_printed(client: Client, clerk, subscriber) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    PrintRequest.objects.create(bill=bill, agency=subscriber.agency, requested_by=subscriber.user)
    client.force_login(clerk)
    changelist = reverse("admin:billing_printrequest_changelist")
    assert client.get(changelist, {"agency__id__exact": subscriber.agency.pk}).status_code == 200
    client.post(changelist, {"action": "mark_printed", "_selected_action": [PrintRequest.objects.get().pk]})
    request = PrintRequest.objects.get()
    assert request.status == PrintRequest.Status.PRINTED and request.printed_by == clerk


@pytest.mark.django_db
def test_the_sms_alert_fee_falls_once_a_year_on_the_anniversary_month(settings) -> None:
    settings.SELFCARE_SMS_ALERT_YEARLY_FEE = "1.000"
    account = ServiceAccountFactory()
    sms_alert_subscribe(account=account, started_on=dt.date(2025, 3, 14))
    sms_alert_subscribe(account=account, started_on=dt.date(2025, 5, 1))  # already subscribed: unchanged
    months = [dt.date(2025, m, 1) for m in range(1, 13)] + [dt.date(2026, m, 1) for m in range(1, 13)]
    charged = [m for m in months if sms_alert_fee_lines(account=account, period=m)]
    assert charged == [dt.date(2025, 3, 1), dt.date(2026, 3, 1)]
    [line] = sms_alert_fee_lines(account=account, period=dt.date(2026, 3, 1))
    assert line.amount == Decimal("1.000") and line.kind == BillLine.Kind.FEE


@pytest.mark.django_db
def test_bill_generation_adds_the_sms_alert_fee(settings) -> None:
    account = ServiceAccountFactory()
    sms_alert_subscribe(account=account, started_on=dt.date(2026, 3, 1))
    Consumption.objects.create(account=account, period=dt.date(2026, 3, 1), unit="kWh", quantity=10)
    bill = bill_issue(account=account, period=dt.date(2026, 3, 1))
    assert bill.lines.filter(kind=BillLine.Kind.FEE, amount=Decimal("1.000")).count() == 1


@pytest.mark.django_db
def test_the_overdue_notice_goes_once_with_the_disconnection_date(subscriber, alice_channels) -> None:
    from billing.dunning import dunning_run

    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber), due_date=dt.date(2026, 11, 20))
    dunning_run(today=dt.date(2026, 11, 21))
    dunning_run(today=dt.date(2026, 11, 22))
    notices = Message.objects.filter(event=OVERDUE_NOTICE.name)
    assert notices.count() == 2  # SMS and e-mail, once each
    assert all("20/12/2026" in m.body and bill.account.number in m.body for m in notices)
    assert all(m.urgent for m in notices)  # a disconnection warning does not wait for the morning


@pytest.mark.django_db
def test_a_reminder_goes_out_days_before_the_due_date_to_channels_that_want_it(subscriber, alice_channels) -> None:
    from billing.dunning import dunning_run

    Message.objects.all().delete()
    alice_channels[1].wants_reminders = False
    alice_channels[1].save()
    account = ServiceAccountFactory(subscriber=subscriber)
    due_soon = BillFactory(account=account, period=dt.date(2026, 10, 1), due_date=dt.date(2026, 11, 24))
    BillFactory(account=account, period=dt.date(2026, 9, 1), due_date=dt.date(2026, 11, 30))
    dunning_run(today=dt.date(2026, 11, 21))
    dunning_run(today=dt.date(2026, 11, 21))
    reminder = Message.objects.get(event=DUE_REMINDER.name)
    assert reminder.channel_kind == "sms" and due_soon.number in reminder.dedupe_key


# --- The relay's kick: one pending at a time, nothing left behind ---------------


@pytest.fixture
def kicks(monkeypatch) -> list[dict]:
    """The relay kicks published (not run: no broker here, and the test runs the relay)."""
    published: list[dict] = []
    monkeypatch.setattr(services.outbox_relay, "apply_async", lambda **options: published.append(options))
    return published


def _announced(subscriber) -> Bill:
    """A bill announced in a committed transaction of its own, as a bill run does."""
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    with transaction.atomic():
        assert bill_announce(bill=bill) == 1
    return bill


@pytest.mark.parametrize("written", ["before its claim", "after its last claim"])
@pytest.mark.django_db(transaction=True)
def test_one_relay_kick_is_pending_at_a_time_and_a_message_written_during_a_run_is_sent(
    settings, subscriber, kicks, monkeypatch, written
) -> None:
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    # given two commits that write messages: one kick for both
    _announced(subscriber)
    _announced(subscriber)
    assert len(kicks) == 1

    # when the relay runs, and a third message commits during its run
    real_claim = relay.outbox_claim
    during: list[Bill] = []

    def claim(**options):
        if written == "before its claim" and not during:
            during.append(_announced(subscriber))
        ids = real_claim(**options)
        if written == "after its last claim" and not during:
            during.append(_announced(subscriber))
        return ids

    monkeypatch.setattr(relay, "outbox_claim", claim)
    tasks.outbox_relay()
    monkeypatch.setattr(relay, "outbox_claim", real_claim)

    # then it went with this run, or it kicked the relay again (whose run sends it)
    if written == "after its last claim":
        assert Message.objects.filter(status=Message.Status.PENDING).count() == 1
        assert len(kicks) == 2
        tasks.outbox_relay()
    assert Message.objects.count() == 3
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.SENT}


@pytest.mark.django_db(transaction=True)
def test_a_kick_the_broker_refused_does_not_hold_back_the_next(settings, subscriber, monkeypatch) -> None:
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    attempts: list[dict] = []

    def refuse(**options):
        attempts.append(options)
        raise ConnectionError("broker down")

    monkeypatch.setattr(services.outbox_relay, "apply_async", refuse)
    _announced(subscriber)
    _announced(subscriber)
    assert len(attempts) == 2  # each commit tried: no flag was left behind by the failure


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_in_process_relay_sends_at_each_commit(settings, subscriber) -> None:
    # `make run`: tasks run in-process, each commit's kick runs the relay at once (eager).
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    for count in range(1, 4):
        _announced(subscriber)
        assert Message.objects.filter(status=Message.Status.SENT).count() == count
    assert Message.objects.count() == 3
