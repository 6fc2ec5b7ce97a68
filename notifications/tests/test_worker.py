"""The outbox through a real Celery worker process on the Redis broker.

Rows are committed (transaction=True) so the worker, which opens its own
connection to the same test database, sees them; the worker sends to the
fake Africa's Talking gateway running in this process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import kombu.pools
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ChannelKind, ContactChannel
from accounts.tests.factories import AgencyFactory, SubscriberFactory
from billing.messages import bill_announce, bills_announce
from billing.models import Bill
from billing.tests.factories import BillFactory, PlanFactory, ServiceAccountFactory
from notifications.models import Message
from notifications.tasks import outbox_redrive, outbox_relay
from notifications.tests import fakes
from notifications.tests.fakes import SMS_API_KEY, SMS_USERNAME, FakeSmsGateway
from selfcare import celery_app

sms_gateway = fakes.sms_gateway

BATCH = 10  # SELFCARE_OUTBOX_BATCH in the worker: a crash can repeat at most one batch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


# --- Broker and worker --------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings) -> None:
    # Messages are written in this process: their schedule must not depend on
    # the hour the suite runs at.
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))


@pytest.fixture
def broker_url() -> Iterator[str]:
    """A Redis database of our own, next to the cache's, emptied before and after."""
    cache = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    cache_db = int(cache.path.strip("/") or 0)
    url = f"redis://{cache.hostname or '127.0.0.1'}:{cache.port or 6379}/{(cache_db + 1) % 16}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _producer_at(url: str) -> None:
    celery_app.conf.update(broker_url=url)
    # Close and forget pooled connections to the previous broker; Celery caches
    # its pools on the app without a public reset.
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def producer(settings, broker_url: str) -> Iterator[Callable[[str], None]]:
    """This process enqueues on the broker instead of running tasks eagerly."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.update(task_always_eager=False)
    _producer_at(broker_url)
    yield _producer_at
    celery_app.conf.update(task_always_eager=saved[1])
    _producer_at(saved[0])


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "postgres") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'])}"


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def start_worker(
    transactional_db, tmp_path: Path, broker_url: str, sms_gateway: FakeSmsGateway
) -> Iterator[Callable[[], Worker]]:
    """Start `celery worker` processes on demand; all are killed at teardown,
    before the test database is flushed."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "SELFCARE_SMS_PROVIDER": "africastalking",
        "AFRICASTALKING_URL": sms_gateway.send_url,
        "AFRICASTALKING_API_KEY": SMS_API_KEY,
        "AFRICASTALKING_USERNAME": SMS_USERNAME,
        "SELFCARE_OUTBOX_BATCH": str(BATCH),
        "SELFCARE_OUTBOX_STALE_SECONDS": "1",
        "SELFCARE_PROVIDER_TIMEOUT": "5",
        "PYTHONUNBUFFERED": "1",
    }
    workers: list[Worker] = []

    def start() -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "selfcare", "worker", "-P", "solo", "--concurrency=1",
            "-l", "info", "-n", f"hooks-{uuid.uuid4().hex[:8]}@%h",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=django_settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        worker = Worker(process, log)
        workers.append(worker)
        wait_for(
            lambda: process.poll() is not None or " ready." in log.read_text(errors="replace"),
            timeout=30,
            what="the worker to be ready",
            workers=[worker],
        )
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{worker.tail()}")
        return worker

    yield start
    for worker in workers:
        worker.kill()


def wait_for(
    condition: Callable[[], bool], *, timeout: float, what: str, workers: Sequence[Worker] = (), interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(w.tail() for w in workers)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(interval)


# --- Data -------------------------------------------------------------------


def bills_for_sms_subscribers(count: int) -> list[Bill]:
    """`count` subscribers, each with a verified French SMS channel and one issued bill."""
    agency, plan = AgencyFactory(), PlanFactory()
    bills = []
    for n in range(count):
        subscriber = SubscriberFactory(agency=agency)
        ContactChannel.objects.create(
            subscriber=subscriber,
            kind=ChannelKind.SMS,
            address=f"+2162{n:07d}",
            language="fr",
            verified_at=timezone.now(),
        )
        bills.append(BillFactory(account=ServiceAccountFactory(subscriber=subscriber, plan=plan)))
    return bills


def announce(bills: list[Bill], *, one_by_one: bool = False) -> list[Message]:
    """Write the outbox rows in one transaction; the relay is kicked at commit.

    `one_by_one` announces each bill with `bill_announce` (one kick per bill),
    else the bill run's `bills_announce`.
    """
    bills = list(
        Bill.objects.filter(pk__in=[b.pk for b in bills])
        .select_related("account__subscriber")
        .prefetch_related("account__subscriber__channels")
    )
    with transaction.atomic():
        if one_by_one:
            assert sum(bill_announce(bill=bill) for bill in bills) == len(bills)
        else:
            assert bills_announce(bills=bills) == len(bills)
    return list(Message.objects.all())


def all_sent(count: int) -> Callable[[], bool]:
    return lambda: Message.objects.filter(status=Message.Status.SENT).count() == count


# --- Scenarios ------------------------------------------------------------------


def test_a_bill_run_reaches_every_subscriber_exactly_once(producer, start_worker, sms_gateway: FakeSmsGateway) -> None:
    # given a worker, and 50 bills announced in one transaction
    worker = start_worker()
    messages = announce(bills_for_sms_subscribers(50), one_by_one=True)

    # when the commit kicks the relay
    wait_for(all_sent(50), timeout=30, what="50 messages sent", workers=[worker])

    # then the gateway got each message once, to the subscriber's number
    assert sms_gateway.receipts == {m.dedupe_key: 1 for m in messages}
    assert len(sms_gateway.requests) == 50
    to = {form["clientReference"]: form["to"] for form in sms_gateway.messages()}
    assert to == {m.dedupe_key: m.address for m in messages}
    ids = dict(Message.objects.values_list("dedupe_key", "provider_message_id"))
    assert ids == {ref: message_id for message_id, ref in sms_gateway.sent.items()}


def test_messages_written_while_the_broker_is_down_are_delivered_once_it_is_back(
    producer, start_worker, broker_url: str, sms_gateway: FakeSmsGateway, caplog
) -> None:
    # given a broker that refuses connections when the bill run commits
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    producer(f"redis://127.0.0.1:{closed_port}/0")
    bills = bills_for_sms_subscribers(6)

    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        messages = announce(bills)

    # then the commit stood, the kick failed loudly, and nothing went out
    assert "Could not enqueue the outbox relay" in caplog.text
    assert {m.status for m in messages} == {Message.Status.PENDING}
    assert sms_gateway.requests == []

    # when the broker is back and the periodic relay runs
    producer(broker_url)
    worker = start_worker()
    outbox_relay.delay()

    wait_for(all_sent(6), timeout=30, what="6 messages sent", workers=[worker])
    assert sms_gateway.receipts == {m.dedupe_key: 1 for m in messages}


def test_a_worker_killed_mid_batch_repeats_only_messages_in_flight(
    producer, start_worker, sms_gateway: FakeSmsGateway
) -> None:
    # given a slow gateway that drops a repeated clientReference, and 100 messages
    sms_gateway.delay = 0.05
    sms_gateway.honour_client_reference = True
    messages = announce(bills_for_sms_subscribers(100))
    keys = {m.dedupe_key for m in messages}

    # when the worker is killed -9 part-way through
    first = start_worker()
    wait_for(lambda: len(sms_gateway.receipts) >= 30, timeout=30, what="30 receipts", workers=[first])
    first.kill()
    received_at_kill = set(sms_gateway.receipts)
    in_flight = set(Message.objects.filter(status=Message.Status.SENDING).values_list("dedupe_key", flat=True))
    assert 0 < len(received_at_kill) < 100, "the kill must land mid-run"
    assert in_flight, "some messages must be claimed but unrecorded at the kill"

    # and a new worker re-drives the stuck rows
    second = start_worker()
    outbox_redrive.delay()
    wait_for(all_sent(100), timeout=60, what="100 messages sent", workers=[second])

    # then every message reached the gateway, repeats are bounded by what was in flight
    assert set(sms_gateway.receipts) == keys
    repeated = {ref for ref, n in sms_gateway.receipts.items() if n > 1}
    assert repeated <= in_flight & received_at_kill
    assert len(repeated) <= BATCH
    assert sum(sms_gateway.receipts.values()) - 100 <= BATCH
    # and each subscriber's phone rang once: the gateway dropped the repeats
    assert sms_gateway.deliveries == {key: 1 for key in keys}
    ids = dict(Message.objects.values_list("dedupe_key", "provider_message_id"))
    assert {ref: ids[ref] for ref in keys} == {ref: mid for mid, ref in sms_gateway.sent.items()}
