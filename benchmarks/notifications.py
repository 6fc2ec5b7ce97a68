"""Bill announcements end to end, against Celery's own throughput in the same run.

    .venv/bin/python benchmarks/notifications.py [N]          (default N = 100000)
    scripts/with-services.sh .venv/bin/python benchmarks/notifications.py 100000

Each run:
1. (Re)creates the database `selfcare_bench_notify` on the PostgreSQL of
   DATABASE_URL, migrates it, and seeds N subscribers, each with a verified SMS
   channel (languages ar/fr/en in turn), one account and one issued bill.
2. Starts the fake Africa's Talking gateway (benchmarks/fake_sms_gateway.py) and
   a Celery worker (prefork, one process per core) on the Redis broker.
3. Baseline: publishes N no-op tasks and times them until the worker ran all.
4. Measured: the bill run announces the N bills as the operator's would, in
   chunks of 1,000 bills handed to the workers (notifications.tasks.
   bills_announce_chunk: render, write the outbox rows, kick the relay), and
   the clock runs from the first chunk until the gateway has received N SMS.
5. Checks none lost, none twice (gateway counts by the outbox dedupe key, every
   row ends `sent`), reads the worker's peak memory, prints a table, then one
   JSON object as the last line. Bar: >= 1,000 messages/s for N = 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/selfcare"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_DB = "selfcare_bench_notify"
BROKER_DB = 9
BAR_RATE = 1000.0
BAR_N = 100_000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def recreate_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a process and its children (the prefork pool)."""
    total = 0
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    for p in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def gateway_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def seed(n: int) -> None:
    """N subscribers with a verified SMS channel, an account and an issued bill, in bulk."""
    import datetime as dt
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Agency, ContactChannel, Subscriber, User
    from billing.demo import plans_ensure
    from billing.models import Bill, ServiceAccount
    from billing.services import account_numbers_reserve

    plan = plans_ensure()["ELEC-RES"]
    today = timezone.localdate()
    period = today.replace(day=1) - dt.timedelta(days=1)
    period = period.replace(day=1)
    now = timezone.now()
    with transaction.atomic():
        agency = Agency.objects.create(code="BENCH", name_ar="وكالة", name_fr="Agence", city="Tunis", address="Tunis")
        step = 10_000
        numbers = account_numbers_reserve(count=n)
        for start in range(0, n, step):
            ids = range(start, min(start + step, n))
            users = User.objects.bulk_create(
                User(email=f"bench{i}@example.com", phone=f"+2162{i:07d}", password="!") for i in ids
            )
            subs = Subscriber.objects.bulk_create(
                Subscriber(user=u, full_name=f"Abonné {i}", agency=agency) for i, u in zip(ids, users, strict=True)
            )
            ContactChannel.objects.bulk_create(
                ContactChannel(
                    subscriber=s, kind="sms", address=f"+2162{i:07d}", language=("ar", "fr", "en")[i % 3],
                    verified_at=now,
                )
                for i, s in zip(ids, subs, strict=True)
            )  # fmt: skip
            accounts = ServiceAccount.objects.bulk_create(
                ServiceAccount(
                    number=numbers[i], subscriber=s, kind="electricity", plan=plan, meter_number=f"E{i}",
                    service_address="Tunis",
                )
                for i, s in zip(ids, subs, strict=True)
            )  # fmt: skip
            Bill.objects.bulk_create(
                Bill(
                    number=f"{a.number}-{period:%Y%m}", account=a, period=period, issue_date=today,
                    due_date=today + dt.timedelta(days=20), currency="TND", amount_lines=Decimal("40.000"),
                    amount_tax=Decimal("7.600"), amount_total=Decimal("47.600"), amount_due=Decimal("47.600"),
                )
                for a in accounts
            )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=BAR_N)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    n = args.n

    db_url = with_db(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, BENCH_DB)
    broker = with_redis_db(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, BROKER_DB)
    gateway_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
        "SECURE_SSL_REDIRECT": "0",
        "SELFCARE_SMS_PROVIDER": "africastalking",
        "AFRICASTALKING_URL": f"http://127.0.0.1:{gateway_port}/version1/messaging",
        "AFRICASTALKING_API_KEY": "bench",
        "AFRICASTALKING_CALLBACK_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": "bench",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        # No quiet hours: the run may happen at night.
        "SELFCARE_QUIET_START": "00:00",
        "SELFCARE_QUIET_END": "00:00",
        "SELFCARE_OUTBOX_BATCH": os.environ.get("SELFCARE_OUTBOX_BATCH", "250"),
    }
    os.environ.update(env)

    log(f"database {BENCH_DB}, broker {broker}, N={n}")
    recreate_database(db_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "selfcare.settings"
    django.setup()
    import redis
    from django.db import connection
    from django.db.models import Count

    from billing.models import Bill
    from billing.tasks import bills_announce_chunk
    from notifications.models import Message
    from selfcare.celery import app

    started = time.monotonic()
    seed(n)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"seeded {n} subscribers in {time.monotonic() - started:.1f} s")

    r = redis.Redis.from_url(broker)
    r.flushdb()
    processes: list[subprocess.Popen] = []
    try:
        gateway = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "fake_sms_gateway.py"), str(gateway_port)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        processes.append(gateway)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "selfcare", "worker", "-P", "prefork",
             f"--concurrency={args.concurrency}", "-I", "benchmarks.tasks", "-l", "warning", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        processes.append(worker)
        deadline = time.monotonic() + 60
        while True:
            try:
                gateway_stats(gateway_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # A ping sent before the worker subscribes is lost: ask until it answers.
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the Celery worker did not start")

        # Baseline: Celery's own throughput for N tasks that do (almost) nothing.
        from benchmarks.tasks import tick

        r.delete("bench:ticks")
        t0 = time.monotonic()
        for _ in range(n):
            tick.delay()
        while int(r.get("bench:ticks") or 0) < n:
            if time.monotonic() - t0 > args.timeout:
                raise TimeoutError("no-op tasks did not finish")
            time.sleep(0.05)
        noop_seconds = time.monotonic() - t0
        noop_rate = n / noop_seconds
        log(f"celery no-op: {n} tasks in {noop_seconds:.1f} s = {noop_rate:.0f}/s")

        # Measured: the bill run, then delivery, until the gateway has them all.
        bill_ids = list(Bill.objects.order_by("pk").values_list("pk", flat=True))
        t0 = time.monotonic()
        for start in range(0, len(bill_ids), 1000):
            bills_announce_chunk.delay(bill_ids[start : start + 1000])
        while Message.objects.count() < n:
            if time.monotonic() - t0 > args.timeout:
                break
            time.sleep(0.2)
        announced = time.monotonic() - t0
        log(f"announced {Message.objects.count()} messages in {announced:.1f} s")
        while gateway_stats(gateway_port)["received"] < n:
            if time.monotonic() - t0 > args.timeout:
                break
            time.sleep(0.05)
        end_to_end = time.monotonic() - t0
        # Let the last batch record its outcome before reading statuses.
        deadline = time.monotonic() + 30
        while Message.objects.exclude(status=Message.Status.SENT).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        stats = gateway_stats(gateway_port)
        peak_kib = peak_rss_kib(worker.pid)
        statuses = dict(Message.objects.values_list("status").annotate(c=Count("pk")).order_by())
    finally:
        for p in processes:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    rate = n / end_to_end
    lost = n - stats["unique"]
    figures = {
        "n": n,
        "messages_per_s": round(rate, 1),
        "end_to_end_s": round(end_to_end, 2),
        "announce_s": round(announced, 2),
        "celery_noop_tasks_per_s": round(noop_rate, 1),
        "ratio_to_celery_noop": round(rate / noop_rate, 3),
        "worker_peak_rss_mib": round(peak_kib / 1024, 1),
        "gateway_received": stats["received"],
        "lost": lost,
        "repeats": stats["repeats"],
        "statuses": statuses,
        "bar": f">= {BAR_RATE:.0f} messages/s for N = {BAR_N}, none lost, none twice",
    }
    figures["pass"] = bool(
        n >= BAR_N and rate >= BAR_RATE and lost == 0 and stats["repeats"] == 0 and statuses.get("sent") == n
    )
    print(f"{'messages/s':>22} {rate:10.1f}")
    print(f"{'celery no-op tasks/s':>22} {noop_rate:10.1f}")
    print(f"{'ratio':>22} {rate / noop_rate:10.3f}")
    print(f"{'worker peak RSS (MiB)':>22} {peak_kib / 1024:10.1f}")
    print(f"{'lost / repeats':>22} {lost:>5} / {stats['repeats']}")
    print(json.dumps(figures))
    return 0 if figures["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
