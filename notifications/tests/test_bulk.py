"""The set-based outbox writer (notifications.bulk) writes, field by field, the
rows `message_rows` would: texts in every language and channel, SMS sizes,
quiet hours, urgency, eligibility, and never a row twice."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from accounts.models import ChannelKind
from billing.messages import BILL_ISSUED, OVERDUE_NOTICE, bill_context
from billing.models import Bill, ServiceKind
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.money import Money
from notifications.bulk import BulkUnsupported, SqlChoice, SqlDate, SqlMoney, SqlText, outbox_insert_select
from notifications.models import Message
from notifications.services import message_rows
from notifications.verification import VERIFICATION_CODE

from .factories import VerifiedChannelFactory

pytestmark = pytest.mark.django_db

TUNIS = zoneinfo.ZoneInfo("Africa/Tunis")
FIELDS = ["dedupe_key", "event", "subscriber_id", "reference", "channel_id", "channel_kind", "address", "language",
          "subject", "body", "encoding", "segments", "urgent", "template_name", "template_params", "status",
          "attempts", "next_attempt_at"]  # fmt: skip
SOURCE = "billing_bill b JOIN billing_serviceaccount a ON a.id = b.account_id WHERE b.id = ANY(%s)"


@pytest.fixture
def bills(subscriber, other_subscriber) -> list[Bill]:
    """Bills of every kind and size, for subscribers with channels of every kind and language."""
    for language in ("ar", "fr", "en"):
        for kind in ChannelKind.values:
            address = {"address": f"alice-{language}@example.com"} if kind == ChannelKind.EMAIL else {}
            VerifiedChannelFactory(subscriber=subscriber, kind=kind, language=language, **address)
    VerifiedChannelFactory(subscriber=other_subscriber, language="fr", verified_at=None)  # no message: unverified
    VerifiedChannelFactory(subscriber=other_subscriber, language="en", wants_bills=False)  # no bills wanted
    VerifiedChannelFactory(subscriber=other_subscriber, kind="whatsapp", language="ar")
    made = []
    for n, (kind, due) in enumerate(
        [
            (ServiceKind.ELECTRICITY, "0.500"),
            (ServiceKind.WATER, "1234.567"),
            (ServiceKind.MOBILE, "0.000"),
            (ServiceKind.INTERNET, "98765432.1"),
            (ServiceKind.GAS, "59.5"),
            (ServiceKind.FIXED_LINE, "1000"),
        ]
    ):
        owner = subscriber if n % 3 else other_subscriber
        account = ServiceAccountFactory(subscriber=owner, kind=kind)
        made.append(BillFactory(account=account, amount_total=Decimal(due), amount_due=Decimal(due),
                                amount_lines=Decimal(due), amount_tax=Decimal(0)))  # fmt: skip
    return made


def expected_rows(bills: list[Bill], event, context_of, now: dt.datetime) -> dict[str, Message]:
    rows = {}
    for bill in Bill.objects.filter(pk__in=[b.pk for b in bills]).select_related("account__subscriber"):
        subscriber = bill.account.subscriber
        for row in message_rows(
            event=event, subscriber=subscriber, object_key=bill.number, context=context_of(bill),
            reference=bill.account.number, channels=subscriber.channels.all(), now=now,
        ):  # fmt: skip
            rows[row.dedupe_key] = row
    return rows


def assert_same(written: dict[str, Message], expected: dict[str, Message]) -> None:
    assert written.keys() == expected.keys()
    for key, row in expected.items():
        assert {f: getattr(written[key], f) for f in FIELDS} == {f: getattr(row, f) for f in FIELDS}, key


def sql_context(currency: str = "TND", link_prefix: str = "https://sc.example/b/") -> dict:
    return {
        "account": SqlText("a.number"),
        "kind": SqlChoice("a.kind", {k: ServiceKind(k).label for k in ServiceKind.values}),
        "period": SqlText("to_char(b.period, 'MM/YYYY')"),
        "amount": SqlMoney("b.amount_due", currency),
        "due_date": SqlDate("b.due_date"),
        "link": SqlText("b.number", prefix=link_prefix),
    }


def python_context(currency: str = "TND", link_prefix: str = "https://sc.example/b/"):  # type: ignore[no-untyped-def]
    def context(bill: Bill) -> dict:
        return {**bill_context(bill), "amount": Money(bill.amount_due, currency), "link": link_prefix + bill.number}

    return context


def write(bills: list[Bill], *, event=BILL_ISSUED, context: dict, now: dt.datetime) -> int:  # type: ignore[no-untyped-def]
    return outbox_insert_select(
        event=event, source=SOURCE, params=[[b.pk for b in bills]], subscriber="a.subscriber_id",
        object_key="b.number", reference="a.number", context=context, now=now,
    )  # fmt: skip


@pytest.mark.parametrize("currency", ["TND", "XOF", "MAD"])
def test_rows_equal_message_rows_in_every_language_channel_and_currency(bills, currency: str) -> None:
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TUNIS)
    Bill.objects.filter(pk__in=[b.pk for b in bills]).update(currency=currency)
    created = write(bills, context=sql_context(currency), now=now)
    expected = expected_rows(bills, BILL_ISSUED, python_context(currency), now)
    assert created == len(expected) == 4 * 9 + 2 * 1  # Alice: 9 channels × 4 bills; Bob: 1 eligible × 2 bills
    assert_same({m.dedupe_key: m for m in Message.objects.all()}, expected)


def test_extension_characters_count_twice_and_long_texts_take_several_parts(bills) -> None:
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TUNIS)
    prefix = "https://sc.example/{~}/" + "x" * 150 + "/"
    write(bills, context=sql_context(link_prefix=prefix), now=now)
    expected = expected_rows(bills, BILL_ISSUED, python_context(link_prefix=prefix), now)
    assert {(row.encoding, row.segments) for row in expected.values() if row.channel_kind == "sms"} >= {
        ("gsm7", 2), ("ucs2", 4)
    }  # fmt: skip
    assert_same({m.dedupe_key: m for m in Message.objects.all()}, expected)


def test_at_night_sms_and_whatsapp_wait_for_the_morning_and_urgent_notices_do_not(bills, phone_providers) -> None:
    night = dt.datetime(2026, 12, 2, 23, 30, tzinfo=TUNIS)
    write(bills, context=sql_context(), now=night)
    expected = expected_rows(bills, BILL_ISSUED, python_context(), night)
    assert_same({m.dedupe_key: m for m in Message.objects.filter(event="bill_issued")}, expected)
    waiting = {m.channel_kind for m in Message.objects.filter(next_attempt_at__gt=night)}
    assert waiting == {"sms", "whatsapp"}

    # An urgent event, with a constant date in its context, goes out at once.
    notice = {**sql_context(), "disconnection_date": dt.date(2026, 12, 12)}
    write(bills, event=OVERDUE_NOTICE, context=notice, now=night)

    def notice_context(bill: Bill) -> dict:
        return {**python_context()(bill), "disconnection_date": dt.date(2026, 12, 12)}

    expected = expected_rows(bills, OVERDUE_NOTICE, notice_context, night)
    assert_same({m.dedupe_key: m for m in Message.objects.filter(event="overdue_notice")}, expected)
    assert not Message.objects.filter(event="overdue_notice", next_attempt_at__gt=night).exists()


def test_writing_again_adds_nothing_and_counts_nothing(bills) -> None:
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TUNIS)
    first = write(bills, context=sql_context(), now=now)
    assert write(bills, context=sql_context(), now=now) == 0
    assert Message.objects.count() == first


def test_a_sealed_event_is_refused_before_anything_is_written(bills) -> None:
    with pytest.raises(BulkUnsupported):
        write(bills, event=VERIFICATION_CODE, context={"code": SqlText("'123456'")}, now=dt.datetime.now(tz=TUNIS))
    assert not Message.objects.exists()
