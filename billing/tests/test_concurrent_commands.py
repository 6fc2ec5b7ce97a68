"""Commands run twice at once: each reports what it really did, neither ends in a traceback."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from billing import demo
from billing.tests.factories import BillFactory, ServiceAccountFactory
from notifications.models import Message
from notifications.tests.factories import VerifiedChannelFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _queued(output: str) -> int:
    return int(re.match(r"(\d+) bill messages queued", output).group(1))


def test_two_concurrent_announce_bills_report_counts_that_add_up(subscriber, other_subscriber) -> None:
    # given 40 bills of one period, each announced on one channel
    for owner in (subscriber, other_subscriber):
        VerifiedChannelFactory(subscriber=owner)
        for _ in range(20):
            BillFactory(account=ServiceAccountFactory(subscriber=owner), period=dt.date(2026, 2, 1))
    period = "2026-02"
    total_bills = 40
    outputs: list[str] = []
    first_wrote = threading.Event()

    def first() -> None:
        # Its rows are written but not committed while the second run starts.
        out = io.StringIO()
        try:
            with transaction.atomic():
                call_command("announce_bills", period=period, stdout=out)
                first_wrote.set()
                time.sleep(1)
        finally:
            first_wrote.set()
            connection.close()
        outputs.append(out.getvalue())

    def second() -> None:
        first_wrote.wait(10)
        out = io.StringIO()
        try:
            call_command("announce_bills", period=period, stdout=out)
        finally:
            connection.close()
        outputs.append(out.getvalue())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then the two printed counts add up to the rows written, each once
    assert len(outputs) == 2
    assert Message.objects.count() == total_bills > 0
    assert sum(_queued(o) for o in outputs) == total_bills


def test_a_second_concurrent_seed_demo_ends_with_a_clear_sentence(monkeypatch) -> None:
    first_inside = threading.Event()
    second_done = threading.Event()
    real_history_save = demo.history_save

    def slow_history_save(*args, **kwargs):
        # The first run is mid-seed (its transaction open) while the second one starts.
        first_inside.set()
        second_done.wait(10)
        return real_history_save(*args, **kwargs)

    monkeypatch.setattr(demo, "history_save", slow_history_save)
    outputs: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        out = io.StringIO()
        try:
            if name == "second":
                first_inside.wait(30)
            call_command("seed_demo", subscribers=3, months=2, stdout=out)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if name == "second":
                second_done.set()
            connection.close()
        outputs[name] = out.getvalue()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert "Seeded" in outputs["first"]
    assert "already being seeded by another process" in outputs["second"]
