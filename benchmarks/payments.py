"""Signed payments under load (issue 8), against a bare DRF view in the same run.

    .venv/bin/python benchmarks/payments.py [--accounts 10000] [--duration 15] [--workers 4]
    scripts/with-services.sh .venv/bin/python benchmarks/payments.py      (make bench-payments)

What it does, each run:

1. (Re)creates the database `selfcare_bench_payments` (--db-name) on the PostgreSQL
   of DATABASE_URL (only the name changes), migrates it and seeds it (seed(), the
   only function that calls the app's internals), in a few seconds after the
   migrations: the demo's agencies and plans, --accounts subscribers (10,000),
   each with one electricity account, a verified SMS channel (so every payment
   writes its "payment received" message to the outbox, as the issue asks) and
   three open bills of 25 to 90 TND (the oldest overdue), written with bulk
   inserts; a provider "Bench Bank" made by payments.services.provider_create,
   whose secret the load generator signs with; and the bare view's two tables
   (bench_account: one row per account number, bench_payment).
2. Counts the queries of one payment through the API in-process
   (CaptureQueriesContext) and, with --profile N, runs N payments in-process
   under cProfile and prints the functions that cost most (to stderr).
3. Serves the app with gunicorn (sync workers, default 4 for 2 cores), DEBUG off,
   PostgreSQL with persistent connections (CONN_MAX_AGE 600 s unless set),
   settings benchmarks.settings (the app's settings and middleware, plus the bare
   view's URL). The outbox relay's kicks go to a Redis queue of this run's own
   (REDIS_URL's database), as they would to the broker in production; nothing
   consumes it during the run and it is deleted afterwards.
4. For the bare view (POST /bench/payments), then the app (POST /api/v1/payments):
   a short unmeasured warm-up, then `wrk -t2 -c16 -d15s` (16 concurrent clients,
   --duration seconds). wrk cannot compute an HMAC, so every request is made
   beforehand, in Python, just before its phase (timestamps well inside the
   300 s window): a distinct payment with a reference never used before, a
   random account among the 10,000, a random amount, signed per the contract
   (payments.signing) for the path it is sent to; the Lua script (PAYMENTS_LUA)
   hands each wrk thread its own share of the file and never sends one twice
   (a phase that runs out fails the run). The bare view gets the very same kind
   of requests (same bytes, headers and sizes; it ignores the signature).
   The Lua script counts the statuses and keeps the reference of every 201 answer.
5. Checks the database against what was sent and acknowledged (verify()):
   every acknowledged reference is there exactly once with the amount and account
   it was sent with, no payment that was not sent, the sum of the acknowledged
   amounts equals the sum in the database, and (beyond the issue's "sums exact")
   each payment's allocations plus credit equal its amount, each bill's paid amount
   equals its allocations and never exceeds its total, each account's credit is
   the sum of its payments' credit, one outbox message and one succeeded inbox row
   per payment, no failed inbox row; the same for the bare view's tables.
   Payments applied after wrk stopped waiting for them (at most one per client
   and phase) are reported as in flight, and checked like the others.
6. Prints a table, then as its last line one JSON object with, for bare and app,
   payments/s, p50/p99 (wrk's, over every request of the 15 s), errors, CPU ms per
   payment of gunicorn (app) and of the PostgreSQL backends (db) and of wrk
   (client), queries per payment, and the ratio app/bare; the load average before
   the run; and "pass": app >= 60 % of bare and >= 500 payments/s, p99 < 50 ms,
   no error or other status than 201, every check of step 5 exact.
   Exit status 0 on pass, 1 on fail, 2 if it could not run.

The machine's speed varies from run to run when other work shares the cores
(the load average is printed, and a warning given above 1.0); the ratio to the
bare view, measured in the same run, and the CPU per payment are the steadier
figures.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.portal import (  # noqa: E402 - after the path is set, as a script
    BenchError,
    bench_database_url,
    cpu_per_request,
    cpu_settled,
    cpu_snapshot,
    database_drop_at_exit,
    database_recreate,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    http_get,
    log,
    tail,
    wrk_path,
)

BENCH_DB = "selfcare_bench_payments"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
DEFAULT_ACCOUNTS = 10_000
OPEN_BILLS = 3
BUSY_LOAD = 1.0  # 1-minute load average above which the machine is not quiet enough

# The issue's bar.
MIN_RATIO = 0.60
MIN_RATE = 500.0
MAX_P99_MS = 50.0

APP_PATH = "/api/v1/payments"
BARE_PATH = "/bench/payments"
KEY_ID = "bench-bank"
CURRENCY = "TND"
POOL_MIN = 5000  # payments prepared for a measured phase, at least
POOL_MARGIN = 3.0  # times what the warm-up's rate would need


# --- setup ------------------------------------------------------------------


def environment_set(database_url: str, queue: str) -> None:
    """The served app's environment; this process uses it too, to seed."""
    if os.environ.get("CONN_MAX_AGE") == "0":
        raise BenchError("CONN_MAX_AGE=0 turns persistent connections off; unset it or give it seconds.")
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "AFRICASTALKING_CALLBACK_TOKEN": secrets.token_urlsafe(24),
            "WHATSAPP_APP_SECRET": secrets.token_urlsafe(24),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            # A broker, as in production: with none, Celery would run the relay
            # eagerly inside each request and "send" every SMS from gunicorn.
            "CELERY_BROKER_URL": redis_url,
            "BENCH_CELERY_QUEUE": queue,
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("CONN_MAX_AGE", "600")


def queue_delete(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    client.delete(queue, *client.keys(f"_kombu.binding.{queue}"))


BARE_TABLES = """
CREATE TABLE bench_account (
    id serial PRIMARY KEY,
    number varchar(10) NOT NULL UNIQUE,
    balance numeric(14, 3) NOT NULL DEFAULT 0
);
CREATE TABLE bench_payment (
    id bigserial PRIMARY KEY,
    reference varchar(64) NOT NULL UNIQUE,
    account_id integer NOT NULL REFERENCES bench_account (id),
    amount numeric(14, 3) NOT NULL CHECK (amount > 0),
    currency varchar(3) NOT NULL,
    paid_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench_account (number) SELECT number FROM billing_serviceaccount ORDER BY id;
"""


def seed(*, accounts: int) -> dict:
    """Agencies, plans, `accounts` subscribers with one account, a verified SMS
    channel and OPEN_BILLS open bills each, the provider and the bare tables."""
    import datetime as dt

    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import ChannelKind, ContactChannel, Subscriber, User
    from billing import demo
    from billing.models import Bill, ServiceAccount, ServiceKind
    from billing.services import account_numbers_reserve
    from payments.models import Provider
    from payments.services import provider_create

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    log(f"  migrated in {time.monotonic() - started:.1f} s")

    seed_started = started = time.monotonic()
    today = timezone.localdate()
    now = timezone.now()
    rng = random.Random(8)
    agencies = demo.agencies_ensure(today=today)
    plans = demo.plans_ensure()
    plan = next(p for p in sorted(plans.values(), key=lambda p: p.code) if p.kind == ServiceKind.ELECTRICITY)
    password = make_password(None)
    users = User.objects.bulk_create(
        [
            User(email=f"pay{i:05d}@example.com", phone=f"+2167{i:07d}", password=password,
                 first_name="Bench", last_name=f"{i:05d}")
            for i in range(accounts)
        ],
        batch_size=2000,
    )  # fmt: skip
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(user=user, full_name=f"Bench Payer {i:05d}", agency=agencies[i % len(agencies)],
                       preferred_language="ar" if i % 2 else "fr")
            for i, user in enumerate(users)
        ],
        batch_size=2000,
    )  # fmt: skip
    ContactChannel.objects.bulk_create(
        [
            ContactChannel(subscriber=s, kind=ChannelKind.SMS, address=f"+2167{i:07d}",
                           language=s.preferred_language, verified_at=now)
            for i, s in enumerate(subscribers)
        ],
        batch_size=2000,
    )  # fmt: skip
    numbers = account_numbers_reserve(count=accounts)
    opened = demo.month_add(today.replace(day=1), -12)
    service_accounts = ServiceAccount.objects.bulk_create(
        [
            ServiceAccount(number=number, subscriber=s, kind=ServiceKind.ELECTRICITY, plan=plan,
                           meter_number=f"P{10_000_000 + i}", service_address=f"{i % 120 + 1} Rue de Marseille, Tunis",
                           opened_on=opened)
            for i, (number, s) in enumerate(zip(numbers, subscribers, strict=True))
        ],
        batch_size=2000,
    )  # fmt: skip
    bills = []
    first_period = demo.month_add(today.replace(day=1), -OPEN_BILLS)
    for account in service_accounts:
        for month in range(OPEN_BILLS):
            period = demo.month_add(first_period, month)
            issued = demo.month_add(period, 1)
            due = issued + dt.timedelta(days=15)
            lines = Decimal(rng.randrange(21_000, 76_000)) / 1000
            tax = (lines * Decimal("0.19")).quantize(Decimal("0.001"))
            bills.append(
                Bill(number=f"{account.number}-{period:%Y%m}", account=account, period=period, issue_date=issued,
                     due_date=due, currency=CURRENCY, amount_lines=lines, amount_tax=tax, amount_total=lines + tax,
                     amount_due=lines + tax, status=Bill.Status.OVERDUE if due < today else Bill.Status.ISSUED)
            )  # fmt: skip
    Bill.objects.bulk_create(bills, batch_size=3000)
    _, secret = provider_create(name="Bench Bank", kind=Provider.Kind.BANK, key_id=KEY_ID)
    with connection.cursor() as cursor:
        cursor.execute(BARE_TABLES)
        cursor.execute("VACUUM ANALYZE")
    log(
        f"  seeded {accounts} subscribers, accounts and channels, {len(bills)} bills ({time.monotonic() - started:.1f} s)"
    )
    return {
        "accounts": [a.number for a in service_accounts],
        "secret": secret,
        "agency_pk": agencies[0].pk,
        "bills": len(bills),
        "seconds": round(time.monotonic() - seed_started, 1),
    }


# --- requests ---------------------------------------------------------------


class Pool:
    """Signed payment requests prepared before a phase: one line per payment for
    the Lua script ("timestamp TAB signature TAB body"), and what each one was."""

    def __init__(self, *, name: str, path: str, count: int, accounts: list[str], secret: str, rng: random.Random):
        self.name, self.path = name, path
        self.sent: dict[str, tuple[str, Decimal]] = {}  # reference -> (account number, amount)
        timestamp = str(int(time.time()))
        paid_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        head = f"{timestamp}\nPOST\n{path}\n".encode()
        key = secret.encode()
        token = secrets.token_hex(3)
        lines = []
        for i in range(count):
            reference = f"{name}-{token}-{i:07d}"
            account = accounts[rng.randrange(len(accounts))]
            amount = f"{rng.randrange(5_000, 150_000) / 1000:.3f}"
            body = (
                f'{{"reference":"{reference}","account_number":"{account}","amount":"{amount}",'
                f'"currency":"{CURRENCY}","paid_at":"{paid_at}","channel":"mobile_app"}}'
            ).encode()
            signature = hmac.new(key, head + body, hashlib.sha256).hexdigest()
            lines.append(f"{timestamp}\tv1={signature}\t{body.decode()}\n")
            self.sent[reference] = (account, Decimal(amount))
        self.lines = lines

    def write(self, path: Path) -> Path:
        path.write_text("".join(self.lines))
        return path


def signing_check(secret: str) -> None:
    """The generator's signature is the app's own (payments.signing), byte for byte."""
    from payments.signing import signature_compute

    body = b'{"a":1}'
    ours = hmac.new(secret.encode(), b"1\nPOST\n/p\n" + body, hashlib.sha256).hexdigest()
    if ours != signature_compute(secret=secret, timestamp="1", method="POST", path="/p", body=body):
        raise BenchError("the load generator's signature differs from payments.signing's")


# wrk's script. Each thread reads the pool file and keeps its own share (thread
# i of n: lines i*N/n to (i+1)*N/n), prepared with wrk.format in init(), and
# sends each once, in order: no payment twice, whatever the timing. A thread
# whose share runs out stops (the run then fails: --pool-margin). wrk calls
# request() once before the run to check the script: that request is counted
# as taken and never sent. response() counts statuses and keeps the reference
# of each 201; done() writes the figures and the references to BENCH_WRK_OUT.
PAYMENTS_LUA = r"""
local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file, path, key, count = args[1], args[2], args[3], tonumber(args[4])
   local lines = {}
   for line in io.lines(file) do
      lines[#lines + 1] = line
   end
   local first = math.floor(thread_index * #lines / count)
   local last = math.floor((thread_index + 1) * #lines / count)
   requests = {}
   for i = first + 1, last do
      local ts, sig, body = lines[i]:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
         ["Content-Type"] = "application/json",
         ["X-Provider-Key"] = key,
         ["X-Timestamp"] = ts,
         ["X-Signature"] = sig,
      }, body)
   end
   lines = nil
   taken, exhausted = 0, 0
   statuses, acked = {}, {}
   spare = wrk.format("GET", "/bench/exhausted")
end

function request()
   if taken >= #requests then
      exhausted = 1
      wrk.thread:stop()
      return spare -- never a payment twice; the run is reported as failed
   end
   taken = taken + 1
   return requests[taken]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 201 then
      local reference = body:match('"reference":%s*"([^"]+)"')
      if reference then
         acked[#acked + 1] = reference
      end
   end
end

function done(summary, latency, requests)
   local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
   out:write(string.format("requests %d\n", summary.requests))
   out:write(string.format("duration_us %d\n", summary.duration))
   for _, name in ipairs({ "connect", "read", "write", "status", "timeout" }) do
      out:write(string.format("error_%s %d\n", name, summary.errors[name]))
   end
   out:write(string.format("p50_us %d\n", latency:percentile(50)))
   out:write(string.format("p99_us %d\n", latency:percentile(99)))
   out:write(string.format("max_us %d\n", latency.max))
   out:write(string.format("mean_us %f\n", latency.mean))
   for _, thread in ipairs(threads) do
      out:write(string.format("taken %d\n", thread:get("taken")))
      out:write(string.format("exhausted %d\n", thread:get("exhausted")))
      for status, n in pairs(thread:get("statuses")) do
         out:write(string.format("status %d %d\n", status, n))
      end
      for _, reference in ipairs(thread:get("acked")) do
         out:write("ack ", reference, "\n")
      end
   end
   out:close()
end
"""


def wrk_run(wrk: str, url: str, script: Path, pool: Path, *, path: str, threads: int, connections: int,
            duration: float, workdir: Path) -> dict:  # fmt: skip
    out = workdir / "wrk.out"
    out.unlink(missing_ok=True)
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(script), url, "--", str(pool), path, KEY_ID, str(threads),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BENCH_WRK_OUT": str(out)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not out.exists():
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    figures: dict = {"statuses": {}, "acked": [], "taken": 0, "exhausted": 0}
    for line in out.read_text().splitlines():
        word, _, value = line.partition(" ")
        if word == "ack":
            figures["acked"].append(value)
        elif word == "status":
            status, count = value.split()
            figures["statuses"][status] = figures["statuses"].get(status, 0) + int(count)
        elif word in {"taken", "exhausted"}:
            figures[word] += int(value)
        else:
            figures[word] = float(value)
    seconds = figures["duration_us"] / 1e6
    errors = {k[6:]: int(v) for k, v in figures.items() if k.startswith("error_")}
    requests = int(figures["requests"])
    return {
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "max_ms": round(figures["max_us"] / 1000, 2),
        "requests": requests,
        "seconds": round(seconds, 2),
        "statuses": figures["statuses"],
        "errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "timeouts": errors["timeout"],
        "non_2xx": errors["status"],
        "not_201": sum(n for status, n in figures["statuses"].items() if status != "201"),
        "exhausted": bool(figures["exhausted"]),
        "acked": figures["acked"],
        "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


# --- in-process: queries and profile -----------------------------------------


_clients: list = []


def call_in_process(pool: Pool, index: int):
    """One of the pool's requests through the whole stack (middleware included),
    without a server: Django's test client, made once (it loads the middleware)."""
    from django.test import Client

    if not _clients:
        _clients.append(Client(HTTP_HOST="127.0.0.1", raise_request_exception=False))
    timestamp, signature, body = pool.lines[index].rstrip("\n").split("\t")
    return _clients[0].generic(
        "POST", pool.path, body.encode(), content_type="application/json",
        HTTP_X_PROVIDER_KEY=KEY_ID, HTTP_X_TIMESTAMP=timestamp, HTTP_X_SIGNATURE=signature,
    )  # fmt: skip


def queries_per_payment(pools: dict[str, Pool]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Queries of one payment (the second: the first warms imports and caches),
    counted in-process; and the references applied on the way."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts, acked = {}, {}
    for name, pool in pools.items():
        acked[name] = []
        for index in range(2):
            with CaptureQueriesContext(connection) as captured:
                response = call_in_process(pool, index)
            if response.status_code != 201:
                raise BenchError(
                    f"{name}: {pool.path} answered {response.status_code} in-process: {response.content!r}"
                )
            acked[name].append(json.loads(response.content)["reference"])
        counts[name] = len(captured)
    return counts, acked


def profile_payments(pool: Pool, count: int, start: int) -> tuple[str, list[str]]:
    """`count` payments through the API view in-process under cProfile: the top of
    the profile by own time and by cumulative time. CPU time of this process
    (time.process_time), not wall time: on a shared machine, waits for the
    database and for the cores would otherwise top the list."""
    acked = []
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for index in range(start, start + count):
        response = call_in_process(pool, index)
        if response.status_code == 201:
            acked.append(json.loads(response.content)["reference"])
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "45")))
    return out.getvalue(), acked


# --- checks -------------------------------------------------------------------


def verify(*, sent: dict[str, tuple[str, Decimal]], acked: list[str], bare_sent: dict, bare_acked: list[str]) -> dict:
    """What the database holds against what was sent and acknowledged; every
    figure that must be zero is named in `problems`."""
    from django.db import connection

    def scalar(sql: str, params: list | None = None):
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])
            return cursor.fetchone()[0]

    def rows(sql: str, params: list | None = None) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])
            return cursor.fetchall()

    problems: dict[str, int] = {}
    db = {
        reference: (number, amount, status)
        for reference, number, amount, status in rows(
            "SELECT p.reference, a.number, p.amount, p.status FROM payments_payment p "
            "JOIN billing_serviceaccount a ON a.id = p.account_id "
            "JOIN payments_provider pr ON pr.id = p.provider_id WHERE pr.key_id = %s",
            [KEY_ID],
        )
    }
    acked_set = set(acked)
    problems["acknowledged_twice"] = len(acked) - len(acked_set)
    problems["acknowledged_missing"] = len(acked_set - db.keys())
    problems["applied_not_sent"] = len(db.keys() - sent.keys())
    problems["wrong_account_or_amount"] = sum(
        1 for ref, (number, amount, _) in db.items() if ref in sent and sent[ref] != (number, amount)
    )
    problems["not_applied_status"] = sum(1 for _, _, status in db.values() if status != "applied")
    problems["references_twice"] = scalar(
        "SELECT count(*) FROM (SELECT reference FROM payments_payment GROUP BY provider_id, reference "
        "HAVING count(*) > 1) t"
    )
    sent_sum = sum((sent[ref][1] for ref in acked_set if ref in sent), Decimal(0))
    db_acked_sum = sum((db[ref][1] for ref in acked_set if ref in db), Decimal(0))
    problems["acknowledged_sum_differs"] = int(sent_sum != db_acked_sum)
    in_flight = len(db.keys() - acked_set)
    # Each payment's parts add up; each bill holds what was allocated to it (all
    # seeded unpaid) and no more than its total; each account's credit is the sum
    # of its payments' credit (seeded at zero, and no bill is issued meanwhile).
    problems["payments_parts_differ"] = scalar(
        "SELECT count(*) FROM payments_payment p LEFT JOIN (SELECT payment_id, sum(amount) s "
        "FROM payments_allocation GROUP BY payment_id) a ON a.payment_id = p.id "
        "WHERE p.amount <> coalesce(a.s, 0) + p.credit"
    )
    problems["bills_paid_differ"] = scalar(
        "SELECT count(*) FROM billing_bill b LEFT JOIN (SELECT bill_id, sum(amount) s FROM payments_allocation "
        "GROUP BY bill_id) a ON a.bill_id = b.id WHERE b.amount_paid <> coalesce(a.s, 0)"
    )
    problems["bills_over_allocated"] = scalar(
        "SELECT count(*) FROM billing_bill WHERE amount_paid > amount_total OR amount_due <> amount_total - amount_paid"
    )
    problems["bills_status_wrong"] = scalar(
        "SELECT count(*) FROM billing_bill WHERE (amount_due = 0) <> (status = 'paid')"
    )
    problems["accounts_credit_differs"] = scalar(
        "SELECT count(*) FROM billing_serviceaccount s LEFT JOIN (SELECT account_id, sum(credit) c "
        "FROM payments_payment GROUP BY account_id) p ON p.account_id = s.id WHERE s.credit <> coalesce(p.c, 0)"
    )
    total_paid = scalar("SELECT coalesce(sum(amount), 0) FROM payments_payment")
    total_landed = scalar("SELECT coalesce(sum(amount_paid), 0) FROM billing_bill") + scalar(
        "SELECT coalesce(sum(credit), 0) FROM billing_serviceaccount"
    )
    problems["money_created_or_lost"] = int(total_paid != total_landed)
    problems["outbox_messages_differ"] = scalar(
        "SELECT count(*) FROM payments_payment p LEFT JOIN (SELECT split_part(dedupe_key, ':', 2) receipt, "
        "count(*) n FROM notifications_message WHERE event = 'payment_received' GROUP BY 1) m "
        "ON m.receipt = p.receipt_number WHERE coalesce(m.n, 0) <> 1"
    )
    problems["inbox_failed"] = scalar("SELECT count(*) FROM payments_apiinbox WHERE status <> 'succeeded'")
    inbox_refs = {
        json.loads(bytes(body))["reference"]
        for (body,) in rows("SELECT body FROM payments_apiinbox WHERE response_status = 201")
    }
    problems["inbox_missing"] = len(db.keys() - inbox_refs)

    bare_db = {ref: (number, amount) for ref, number, amount in rows(
        "SELECT p.reference, a.number, p.amount FROM bench_payment p JOIN bench_account a ON a.id = p.account_id"
    )}  # fmt: skip
    bare_acked_set = set(bare_acked)
    problems["bare_acknowledged_twice"] = len(bare_acked) - len(bare_acked_set)
    problems["bare_acknowledged_missing"] = len(bare_acked_set - bare_db.keys())
    problems["bare_applied_not_sent"] = len(bare_db.keys() - bare_sent.keys())
    problems["bare_wrong_account_or_amount"] = sum(
        1 for ref, value in bare_db.items() if ref in bare_sent and bare_sent[ref] != value
    )
    problems["bare_balance_differs"] = int(
        scalar("SELECT coalesce(sum(balance), 0) FROM bench_account")
        != scalar("SELECT coalesce(sum(amount), 0) FROM bench_payment")
    )
    return {
        "payments_in_db": len(db),
        "acknowledged": len(acked_set),
        "in_flight": in_flight,
        "acknowledged_sum": f"{sent_sum:f}",
        "db_sum_of_acknowledged": f"{db_acked_sum:f}",
        "allocations": scalar("SELECT count(*) FROM payments_allocation"),
        "bare_in_db": len(bare_db),
        "bare_acknowledged": len(bare_acked_set),
        "bare_in_flight": len(bare_db.keys() - bare_acked_set),
        "problems": {k: v for k, v in problems.items() if v},
        "exact": not any(problems.values()),
    }


# --- main -------------------------------------------------------------------


def wait_until_serving(process: subprocess.Popen, port: int, path: str, log_file: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with status {process.returncode}:\n{tail(log_file)}")
        try:
            if http_get(port, path, None)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not answer {path} within {timeout:.0f} s:\n{tail(log_file)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS, help="accounts paid into (default 10000)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of measured load per view (default 15)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load before each (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4, for 2 cores)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N in-process payments first")
    parser.add_argument("--db-name", default=BENCH_DB, help=f"database to (re)create (default {BENCH_DB})")
    parser.add_argument("--keep-db", action="store_true", help="leave the database in place afterwards")
    args = parser.parse_args(argv)
    if args.accounts < 2 or args.connections < args.threads:
        parser.error("--accounts must be at least 2 and --connections at least --threads")

    figures: dict = {"benchmark": "payments"}
    process = None
    maintenance_url = None
    db_created = False
    queue = f"bench-payments-{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-payments-"))
    load_before = os.getloadavg()[0]
    try:
        wrk = wrk_path()
        if load_before > BUSY_LOAD:
            log(f"warning: load average {load_before:.1f} before the run: other work shares the cores")
        database_url, maintenance_url = bench_database_url(args.db_name)
        environment_set(database_url, queue)
        (workdir / "static").mkdir()
        os.environ["BENCH_STATIC_ROOT"] = str(workdir / "static")
        log(f"database: {args.db_name} (re)created; seeding {args.accounts} accounts")
        database_recreate(maintenance_url, args.db_name)
        db_created = True

        import django

        django.setup()
        from django.conf import settings
        from django.db import connections

        seeded = seed(accounts=args.accounts)
        signing_check(seeded["secret"])
        rng = random.Random(15)
        accounts, secret = seeded["accounts"], seeded["secret"]

        def pool_for(name: str, path: str, count: int) -> Pool:
            return Pool(name=name, path=path, count=count, accounts=accounts, secret=secret, rng=rng)

        sent: dict[str, dict] = {"app": {}, "bare": {}}
        acked: dict[str, list[str]] = {"app": [], "bare": []}
        paths = {"bare": BARE_PATH, "app": APP_PATH}

        inproc = {name: pool_for(f"{name}-q", path, 2 + (args.profile if name == "app" else 0)) for name, path in paths.items()}  # fmt: skip
        queries, inproc_acked = queries_per_payment(inproc)
        for name in paths:
            sent[name].update(inproc[name].sent)
            acked[name].extend(inproc_acked[name])
        log(f"queries per payment (in-process): app {queries['app']}, bare {queries['bare']}")
        if args.profile:
            report, profiled = profile_payments(inproc["app"], args.profile, 2)
            acked["app"].extend(profiled)
            log(f"profile of {args.profile} payments through the API view, in-process:\n{report}")
        connections.close_all()

        port = free_port()
        gunicorn_log = workdir / "gunicorn.log"
        log(f"serving: gunicorn, {args.workers} sync workers, 127.0.0.1:{port}, CONN_MAX_AGE={os.environ['CONN_MAX_AGE']}")  # fmt: skip
        process = gunicorn_start(port, args.workers, gunicorn_log)
        wait_until_serving(process, port, f"/bare/{seeded['agency_pk']}/", gunicorn_log)
        url = f"http://127.0.0.1:{port}"
        script = workdir / "payments.lua"
        script.write_text(PAYMENTS_LUA)
        load = {"threads": args.threads, "connections": args.connections, "workdir": workdir}

        results: dict[str, dict] = {}
        for name, path in paths.items():
            warm_pool = pool_for(f"{name}-w", path, max(2000, round(6000 * args.warmup)))
            sent[name].update(warm_pool.sent)
            log(f"load: {name} POST {path}: {args.warmup:g} s warm-up, then {args.duration:g} s measured")
            warm = wrk_run(wrk, url, script, warm_pool.write(workdir / "pool.tsv"), path=path, duration=args.warmup, **load)  # fmt: skip
            acked[name].extend(warm["acked"])
            if warm["exhausted"]:
                raise BenchError(f"{name}: the warm-up used up its {len(warm_pool.lines)} payments")
            count = max(POOL_MIN, round(warm["rps"] * args.duration * POOL_MARGIN))
            pool = pool_for(name, path, count)
            sent[name].update(pool.sent)
            pool_file = pool.write(workdir / "pool.tsv")
            before = cpu_snapshot(process.pid, maintenance_url, args.db_name)
            result = wrk_run(wrk, url, script, pool_file, path=path, duration=args.duration, **load)
            after = cpu_settled(process.pid, maintenance_url, args.db_name)
            acked[name].extend(result.pop("acked"))
            result.update(cpu_per_request(before, after, result["requests"]) or {})
            result["client_cpu_ms"] = round(result.pop("client_cpu_s") * 1000 / max(result["requests"], 1), 3)
            result["queries"] = queries[name]
            result["pool"] = count
            result["clean"] = (
                result["errors"] == 0 and result["non_2xx"] == 0 and result["not_201"] == 0
                and not result["exhausted"] and warm["errors"] == 0 and warm["not_201"] == 0
            )  # fmt: skip
            if not result["clean"]:
                log(f"  {name}: errors or answers other than 201 ({result['statuses']}, pool used up: {result['exhausted']}):")  # fmt: skip
                log(tail(gunicorn_log, 20))
            if process.poll() is not None:
                raise BenchError(f"gunicorn died during the {name} run:\n{tail(gunicorn_log)}")
            results[name] = result
            log(f"  {name}: {result['rps']:.0f}/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")

        gunicorn_stop(process)
        process = None
        checks = verify(sent=sent["app"], acked=acked["app"], bare_sent=sent["bare"], bare_acked=acked["bare"])

        app, bare = results["app"], results["bare"]
        app["ratio_to_bare"] = round(app["rps"] / bare["rps"], 3) if bare["rps"] else 0.0
        if "app_cpu_ms" in app and "app_cpu_ms" in bare:
            cost = app["app_cpu_ms"] + app["db_cpu_ms"]
            app["cpu_ratio_to_bare"] = round((bare["app_cpu_ms"] + bare["db_cpu_ms"]) / cost, 3) if cost else 0.0
        bar = {
            "ratio": app["ratio_to_bare"] >= MIN_RATIO,
            "rate": app["rps"] >= MIN_RATE,
            "p99": app["p99_ms"] < MAX_P99_MS,
            "clean": app["clean"] and bare["clean"],
            "sums_exact": checks["exact"],
        }
        overall = all(bar.values())

        print()
        print(
            f"{os.cpu_count()} cores, gunicorn {args.workers} sync workers, wrk -t{args.threads} -c{args.connections} "
            f"-d{args.duration:g}s, DEBUG={settings.DEBUG}, CONN_MAX_AGE={settings.DATABASES['default']['CONN_MAX_AGE']}, "
            f"load average before {load_before:.2f}"
        )
        print(
            f"data: {args.accounts} accounts with {OPEN_BILLS} open bills each ({seeded['bills']} bills), "
            f"a verified SMS channel each (seeded in {seeded['seconds']:g} s)"
        )
        header = (
            f"{'view':<5} {'path':<18} {'payments/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'ratio':>6} "
            f"{'app CPU':>8} {'db CPU':>7} {'client':>7} {'queries':>7} {'errors':>6}"
        )
        print(header)
        print("-" * len(header))
        for name in ("bare", "app"):
            r = results[name]
            cpu = [f"{r[k]:.2f}" if k in r else "-" for k in ("app_cpu_ms", "db_cpu_ms", "client_cpu_ms")]
            print(
                f"{name:<5} {paths[name]:<18} {r['rps']:>10.1f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                f"{r['max_ms']:>7.1f} {r.get('ratio_to_bare', 1.0):>6.2f} {cpu[0]:>8} {cpu[1]:>7} {cpu[2]:>7} "
                f"{r['queries']:>7} {r['errors'] + r['not_201']:>6}"
            )
        print("CPU columns: milliseconds of CPU per payment: gunicorn processes, PostgreSQL backends, wrk")
        print(
            f"checks: {checks['payments_in_db']} payments in the database, {checks['acknowledged']} acknowledged "
            f"(201), {checks['in_flight']} applied while wrk stopped waiting; acknowledged sum "
            f"{checks['acknowledged_sum']} sent = {checks['db_sum_of_acknowledged']} in the database; "
            f"{checks['allocations']} allocations; bare: {checks['bare_in_db']} rows, {checks['bare_acknowledged']} "
            f"acknowledged -> {'exact' if checks['exact'] else 'WRONG: ' + json.dumps(checks['problems'])}"
        )
        verdicts = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in bar.items())
        print(
            f"bar: app >= {MIN_RATIO:.0%} of bare and >= {MIN_RATE:g} payments/s, p99 < {MAX_P99_MS:g} ms, "
            f"no error, sums exact -> {'PASS' if overall else 'FAIL'} "
            f"({verdicts})"
        )
        if load_before > BUSY_LOAD:
            print(f"note: load average was {load_before:.1f} before the run (not a quiet machine)")
        figures.update(
            {
                "bare": bare,
                "app": app,
                "ratio": app["ratio_to_bare"],
                "checks": checks,
                "accounts": args.accounts,
                "cores": os.cpu_count(),
                "workers": args.workers,
                "connections": args.connections,
                "duration_s": args.duration,
                "seed_s": seeded["seconds"],
                "loadavg_before": round(load_before, 2),
                "bar": {"min_ratio": MIN_RATIO, "min_rate": MIN_RATE, "max_p99_ms": MAX_P99_MS, **bar},
                "pass": overall,
            }
        )
        print(json.dumps(figures))
        return 0 if overall else 1
    except BenchError as exc:
        log(f"benchmark error: {exc}")
        figures.update({"pass": False, "error": str(exc).splitlines()[0]})
        print(json.dumps(figures))
        return 2
    except Exception as exc:
        traceback.print_exc()
        figures.update({"pass": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        print(json.dumps(figures))
        return 2
    finally:
        if process is not None:
            gunicorn_stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        if db_created:
            try:
                queue_delete(queue)
            except Exception as exc:
                log(f"could not delete the queue {queue}: {exc}")
        if db_created and not args.keep_db and maintenance_url:
            database_drop_at_exit(maintenance_url, args.db_name)


if __name__ == "__main__":
    sys.exit(main())
