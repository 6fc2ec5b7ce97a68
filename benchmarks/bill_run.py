"""A bill run at national scale, against a raw binary COPY of the same rows in the same run.

    .venv/bin/python benchmarks/bill_run.py --accounts 1000000
    scripts/with-services.sh .venv/bin/python benchmarks/bill_run.py --accounts 100000
    make bench-bill-run N=1000000

What it does, each run:

1. (Re)creates the database `selfcare_billrun_bench` (--db-name) on the PostgreSQL
   of DATABASE_URL, migrates it and seeds, with COPY and INSERT … SELECT (seed()):
   N active postpaid accounts, two per subscriber, of every kind (60 % electricity
   on the STEG-like residential tariff with a municipal levy and the TV fee, 25 %
   water, 5 % gas, 10 % mobile), each subscriber with a verified SMS channel in
   Arabic, French or English (one in ten also an e-mail address); a reading for
   last month for almost every meter (telecom: minutes, SMS and data), one meter
   in 40 unread but with three earlier readings (an estimated bill), one in a
   thousand never read (skipped); one account in 20 with credit; one in a hundred
   with the paid SMS alert service in its anniversary month. Then VACUUM ANALYZE
   and a CHECKPOINT, so the seeding's WAL is not written during the measurement.
2. Starts a Redis server of its own (a free port, nothing saved) as the broker,
   so that nothing else on the machine empties the queue mid-run (a test suite's
   FLUSHDB did, twice), and a Celery worker (prefork, --workers processes,
   default 2) on it, as production runs them.
3. Measured: the bill run of last month for every account, as `manage.py bill_run`
   starts it: planned in chunks (--chunk accounts), handed to the workers, and
   timed until the run's row says finished (bills, lines, credit and one
   bill-issued outbox row per channel committed).
4. Checks the counts (bills, estimated, skipped, lines, outbox rows) against what
   the seeding implies, and recomputes a random sample of bills with
   billing.tariffs.bill_compute (amounts and every line).
5. Baseline: the same bill and line rows, dumped with binary COPY TO, loaded with
   binary COPY FROM into scratch tables (same columns, no index), in as many
   parallel connections as workers.
6. Peak memory: the resident memory (RSS) of every process involved (this one,
   the Celery worker and its pool, the broker, the PostgreSQL backends of the
   bench database), sampled every 0.5 s and summed: the highest sum is the
   figure of the bar. It counts PostgreSQL's shared buffers once per backend
   that touched them, so the PSS sum (shared pages divided among the processes
   that map them) is printed beside it. Celery closes a task's database
   connection when the task ends, so backends come and go; the sampler follows them.
7. Prints a table, then one JSON object as the last line. Bar: N = 1,000,000
   billed in under 60 s on 2 cores with every count right, the summed peak
   under 1 GiB; the ratio to the raw COPY is reported (compass goal 0.25).
   Exit status 0 on pass, 1 on fail, 2 if it could not run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/selfcare"
BENCH_DB = "selfcare_billrun_bench"
BAR_N = 1_000_000
BAR_SECONDS = 60.0
BAR_MEMORY_MIB = 1024.0
GOAL_RATIO = 0.25
BUSY_LOAD = 1.0
SAMPLE = 1000  # bills recomputed with bill_compute


class BenchError(Exception):
    """Something kept the benchmark from measuring; the message says what."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    try:
        with psycopg.connect(with_path(url, "/postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL: {exc}".strip()) from exc


def database_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_path(url, "/postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- seeding -------------------------------------------------------------------

# (share out of 20, kind, plan code)
MIX = [(12, "electricity", "ELEC-RES"), (5, "water", "WATER-DOM"), (1, "gas", "GAS-RES"), (2, "mobile", "MOB-10")]
KIND_OF = [kind for share, kind, _code in MIX for _ in range(share)]
PLAN_OF = {kind: code for _share, kind, code in MIX}


def usage_of(i: int, kind: str) -> dict[str, Decimal]:
    """Last month's usage of account i: spread over every tranche, deterministic."""
    r = (i * 2654435761) % 1_000_003
    if kind == "electricity":
        return {"kWh": Decimal(r % 700_000) / 1000}
    if kind == "water":
        return {"m3": Decimal(r % 90_000) / 1000}
    if kind == "gas":
        return {"m3": Decimal(r % 80_000) / 1000}
    return {"min": Decimal(r % 450), "sms": Decimal(r % 160), "GB": Decimal(r % 1500) / 100}


def history_of(i: int, kind: str) -> list[Decimal]:
    """Three earlier readings of an unread meter (newest first)."""
    unit = "kWh" if kind == "electricity" else "m3"
    return [usage_of(i + k * 7, kind)[unit] for k in (1, 2, 3)]


def is_unread(i: int) -> bool:
    return i % 40 == 7


def is_never_read(i: int, kind: str) -> bool:
    return i % 1000 == 990 and kind != "mobile"


def seed(*, accounts: int) -> dict:
    """N accounts and their subscribers, channels and readings; returns what the checks expect."""
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from billing import demo
    from billing.models import Plan, PlanLevy
    from billing.runs import quantity_quantize
    from billing.services import account_numbers_reserve
    from billing.tariffs import bill_compute, plan_terms
    from core.dates import month_add

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    log(f"  migrated ({time.monotonic() - started:.1f} s)")
    started = time.monotonic()
    today = timezone.localdate()
    period = month_add(today, -1)
    agencies = demo.agencies_ensure(today=today)
    plans = demo.plans_ensure()
    for code in ("ELEC-RES",):
        plan = plans[code]
        if not plan.levies.exists():
            PlanLevy.objects.create(plan=plan, position=1, name_ar="المعلوم البلدي", name_fr="Contribution municipale",
                                    name_en="Municipal levy", amount=Decimal("0.500"), taxable=True)  # fmt: skip
            PlanLevy.objects.create(plan=plan, position=2, name_ar="معلوم التلفزة", name_fr="Redevance TV",
                                    name_en="TV fee", amount=Decimal("1.000"), taxable=False)  # fmt: skip
    terms = {
        kind: plan_terms(Plan.objects.prefetch_related("tiers", "levies").get(code=code))
        for kind, code in PLAN_OF.items()
    }
    plan_ids = {kind: plans[code].pk for kind, code in PLAN_OF.items()}
    subscribers = (accounts + 1) // 2

    with connection.cursor() as cursor:
        # Users, subscribers and channels straight from generate_series: no Python per row.
        cursor.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, first_name, last_name, is_staff, is_active,
                                       date_joined, email, phone)
            SELECT '!', false, 'Bench', i::text, false, true, now(), 'bench' || i || '@example.com',
                   '+2165' || lpad(i::text, 7, '0')
            FROM generate_series(0, %s - 1) i
            """,
            [subscribers],
        )
        cursor.execute(
            """
            INSERT INTO accounts_subscriber (user_id, full_name, preferred_language, agency_id, paperless, created_at)
            SELECT u.id, 'Abonné ' || u.last_name, (ARRAY['ar', 'fr', 'en'])[u.last_name::int %% 3 + 1],
                   (%s::bigint[])[u.last_name::int %% %s + 1], false, now()
            FROM accounts_user u WHERE u.email LIKE 'bench%%'
            """,
            [[a.pk for a in agencies], len(agencies)],
        )
        cursor.execute(
            """
            INSERT INTO accounts_contactchannel (subscriber_id, kind, address, language, verified_at, wants_bills,
                                                 wants_reminders, wants_service, wants_offers, created_at)
            SELECT s.id, 'sms', u.phone, s.preferred_language, now(), true, true, true, false, now()
            FROM accounts_subscriber s JOIN accounts_user u ON u.id = s.user_id WHERE u.email LIKE 'bench%%'
            UNION ALL
            SELECT s.id, 'email', u.email, s.preferred_language, now(), true, true, true, false, now()
            FROM accounts_subscriber s JOIN accounts_user u ON u.id = s.user_id
            WHERE u.email LIKE 'bench%%' AND u.last_name::int %% 10 = 0
            """,
            [],  # parameters, even none, so `%%` reads as `%` in every statement here
        )
        cursor.execute(
            "SELECT u.last_name::int, s.id FROM accounts_subscriber s JOIN accounts_user u ON u.id = s.user_id "
            "WHERE u.email LIKE 'bench%%'",
            [],
        )
        subscriber_ids = dict(cursor.fetchall())
    log(f"  {subscribers} subscribers and their channels ({time.monotonic() - started:.1f} s)")

    started = time.monotonic()
    numbers = account_numbers_reserve(count=accounts)
    expected = {"bills": 0, "estimated": 0, "skipped": 0, "lines": 0, "messages": 0}
    opened = month_add(period, -24)
    raw = connection.connection  # psycopg's own connection, for COPY
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY billing_serviceaccount (number, subscriber_id, kind, billing_mode, status, plan_id, meter_number, "
            "service_address, opened_on, credit, billing_cycle) FROM STDIN"
        ) as copy:
            for i in range(accounts):
                kind = KIND_OF[i % 20]
                copy.write_row((
                    numbers[i], subscriber_ids[i // 2], kind, "postpaid", "active", plan_ids[kind],
                    f"B{i:09d}", "1 Avenue Habib Bourguiba, Tunis", opened,
                    Decimal("10.000") if i % 20 == 5 else Decimal(0), 1 + i % 4,
                ))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT number, id FROM billing_serviceaccount")
        account_ids = dict(cursor.fetchall())
    history = [month_add(period, -k) for k in (1, 2, 3)]
    alert_started = period.replace(year=period.year - 1, day=10)
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY billing_consumption (account_id, period, unit, quantity, meter_index) FROM STDIN"
        ) as copy:
            for i in range(accounts):
                kind = KIND_OF[i % 20]
                account_id = account_ids[numbers[i]]
                if is_never_read(i, kind):
                    expected["skipped"] += 1
                    continue
                if is_unread(i) and kind != "mobile":
                    past = history_of(i, kind)
                    unit = "kWh" if kind == "electricity" else "m3"
                    for month, quantity in zip(history, past, strict=True):
                        copy.write_row((account_id, month, unit, quantity, None))
                    usage = {unit: quantity_quantize(sum(past) / len(past))}
                    expected["estimated"] += 1
                else:
                    usage = usage_of(i, kind)
                    for unit, quantity in usage.items():
                        copy.write_row((account_id, period, unit, quantity, None))
                draft = bill_compute(plan=terms[kind], usage=usage, period=period, currency="TND")
                expected["bills"] += 1
                expected["lines"] += len(draft.lines) + (i % 100 == 3)  # the SMS alert fee
                expected["messages"] += 1 + ((i // 2) % 10 == 0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_smsalertsubscription (account_id, started_on, created_at)
            SELECT a.id, %s, now() FROM billing_serviceaccount a
            WHERE substr(a.meter_number, 2)::int %% 100 = 3
              AND substr(a.meter_number, 2)::int %% 1000 <> 990
            """,
            [alert_started],
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    log(f"  {accounts} accounts and their readings, vacuum, checkpoint ({time.monotonic() - started:.1f} s)")
    return {"period": period, "expected": expected, "subscribers": subscribers}


def seed_in_child(*, accounts: int) -> dict:
    """seed() in a child process: its million rows of Python objects die with it,
    so the memory measured is the run's, not the seeding's."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def target() -> None:
        try:
            queue.put(("ok", seed(accounts=accounts)))
        except BaseException as exc:
            traceback.print_exc()
            queue.put(("error", f"{type(exc).__name__}: {exc}"))

    child = context.Process(target=target)
    child.start()
    status, value = queue.get()
    child.join()
    if status != "ok":
        raise BenchError(f"seeding failed: {value}")
    return value


# --- measuring ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB (0 when it is gone)."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in out:
                out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def proc_pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (PostgreSQL's buffers) divided among the
    processes that map them, so a sum over processes counts them once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


class Involved:
    """The processes of the run: this one, the Celery worker and its pool, the
    broker, and the PostgreSQL backends of the bench database (but the one asking)."""

    def __init__(self, dsn: str, worker_pid: int, extra: list[int]) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.worker_pid = worker_pid
        self.extra = extra
        self.app_pids: set[int] = set()
        self.lock = threading.Lock()

    def backends(self) -> list[int]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return [pid for (pid,) in rows]

    def roles(self) -> dict[int, str]:
        """Each process involved with what it is, for the peak's breakdown."""
        roles = {os.getpid(): "benchmark", self.worker_pid: "celery parent"}
        roles.update((pid, "celery pool") for pid in children_of(self.worker_pid))
        roles.update((pid, "broker") for pid in self.extra)
        self.app_pids.update(roles)
        roles.update((pid, "postgresql backends") for pid in self.backends())
        return roles

    def close(self) -> None:
        self.conn.close()


class Sampler(threading.Thread):
    """Every 0.5 s: the summed resident memory of the processes involved, and
    each one's CPU time (first and last seen: backends come and go)."""

    def __init__(self, involved: Involved) -> None:
        super().__init__(daemon=True)
        self.involved = involved
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.peak_parts: dict[str, int] = {}  # RSS KiB by role, at the peak of the sum
        self.first_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        rss = pss = 0
        parts: Counter[str] = Counter()
        for pid, role in self.involved.roles().items():
            resident = proc_status(pid)["VmRSS"]
            parts[role] += resident
            rss += resident
            pss += proc_pss_kib(pid)
            cpu = proc_cpu_seconds(pid)
            self.first_cpu.setdefault(pid, cpu)
            self.last_cpu[pid] = max(cpu, self.last_cpu.get(pid, 0.0))
        if rss > self.peak_kib:
            self.peak_kib, self.peak_parts = rss, dict(parts)
        self.peak_pss_kib = max(self.peak_pss_kib, pss)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.5)

    def cpu_seconds(self, pids: set[int]) -> float:
        return sum(self.last_cpu[p] - self.first_cpu[p] for p in self.last_cpu if p in pids)


def copy_baseline(dsn: str, period, workers: int, workdir: Path) -> dict:
    """The run's bill and line rows, dumped with binary COPY, then loaded into
    scratch tables without indexes by `workers` connections at once; the load is timed."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        low, high = conn.execute("SELECT min(id), max(id) FROM billing_bill WHERE period = %s", [period]).fetchone()
        bounds = [low + (high - low + 1) * k // workers for k in range(workers + 1)]
        files = []
        for k in range(workers):
            bills, lines = workdir / f"bills-{k}.bin", workdir / f"lines-{k}.bin"
            low_k, high_k = int(bounds[k]), int(bounds[k + 1])
            for path, query in (
                (bills, f"SELECT * FROM billing_bill WHERE id >= {low_k} AND id < {high_k}"),  # noqa: S608
                (lines, f"SELECT * FROM billing_billline WHERE bill_id >= {low_k} AND bill_id < {high_k}"),  # noqa: S608
            ):
                with path.open("wb") as out, conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
                    for block in copy:
                        out.write(block)
            files.append((bills, lines))
        conn.execute("DROP TABLE IF EXISTS bench_scratch_bill, bench_scratch_line")
        conn.execute("CREATE TABLE bench_scratch_bill (LIKE billing_bill)")
        conn.execute("CREATE TABLE bench_scratch_line (LIKE billing_billline)")
        conn.execute("CHECKPOINT")
    rows = {"bills": 0, "lines": 0}
    errors: list[BaseException] = []

    def load(bills: Path, lines: Path) -> None:
        try:
            with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
                for path, table, key in (
                    (bills, "bench_scratch_bill", "bills"),
                    (lines, "bench_scratch_line", "lines"),
                ):
                    with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy, path.open("rb") as data:
                        while block := data.read(1 << 20):
                            copy.write(block)
                    rows[key] += cursor.rowcount
                conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=pair) for pair in files]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_scratch_bill, bench_scratch_line")
    if errors:
        raise BenchError(f"the COPY baseline failed: {errors[0]}")
    size = sum(p.stat().st_size for pair in files for p in pair)
    return {"seconds": seconds, "bytes": size, **rows}


def sample_check(period, size: int) -> list[str]:
    """Recompute `size` random bills with bill_compute; returns the differences."""
    from billing.models import Bill, Plan
    from billing.runs import usage_for_billing
    from billing.services import sms_alert_fee_lines
    from billing.tariffs import bill_compute, plan_terms

    plans = {p.pk: plan_terms(p) for p in Plan.objects.prefetch_related("tiers", "levies")}
    ids = list(Bill.objects.filter(period=period).values_list("pk", flat=True))
    problems = []
    for bill in Bill.objects.filter(pk__in=random.Random(1).sample(ids, min(size, len(ids)))).select_related("account"):
        account = bill.account
        usage, estimated = usage_for_billing(account=account, period=period)
        credit_before = account.credit + bill.amount_paid
        draft = bill_compute(
            plan=plans[account.plan_id], usage=usage, period=period, credit=credit_before, currency=bill.currency,
            extra_lines=sms_alert_fee_lines(account=account, period=period),
        )  # fmt: skip
        got = [(li.kind, li.tier, li.quantity, li.unit, li.unit_price, li.amount, li.levy_id)
               for li in bill.lines.order_by("position")]  # fmt: skip
        want = [(d.kind, d.tier, d.quantity, d.unit, d.unit_price, d.amount, d.levy_id) for d in draft.lines]
        if (bill.amount_lines, bill.amount_tax, bill.amount_total, bill.amount_paid, bill.amount_due) != (
            draft.amount_lines, draft.amount_tax, draft.amount_total, draft.credit_used, draft.amount_due,
        ) or got != want or bill.is_estimated != estimated:  # fmt: skip
            problems.append(bill.number)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=BAR_N, help=f"accounts to bill (default {BAR_N})")
    parser.add_argument(
        "--workers", type=int, default=2, help="chunks billed at once: the Celery concurrency (default 2)"
    )
    parser.add_argument(
        "--pool", choices=["threads", "prefork"], default="threads",
        help="the Celery pool (default threads: the work is PostgreSQL's, and one process holds Django once)",
    )  # fmt: skip
    parser.add_argument("--chunk", type=int, default=10_000, help="accounts per chunk (default 10000)")
    parser.add_argument("--db-name", default=BENCH_DB)
    parser.add_argument("--redis-server", default="redis-server", help="the redis-server binary for the broker")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database for inspection")
    args = parser.parse_args()
    if args.accounts < 1 or args.workers < 1 or args.chunk < 1:
        parser.error("--accounts, --workers and --chunk must be at least 1")

    figures: dict = {"accounts": args.accounts, "workers": args.workers, "pool": args.pool, "chunk": args.chunk}
    db_url = with_path(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, f"/{args.db_name}")
    broker_port = free_port()
    broker = f"redis://127.0.0.1:{broker_port}/0"
    if urlsplit(db_url).scheme not in {"postgres", "postgresql", "pgsql"}:
        print(json.dumps({**figures, "pass": False, "error": "the benchmark needs PostgreSQL (DATABASE_URL)"}))
        return 2
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "selfcare.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        # Nothing of the run uses the cache; the machine's Redis is left alone.
        "REDIS_URL": "",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AFRICASTALKING_CALLBACK_TOKEN": secrets.token_urlsafe(24),
        "WHATSAPP_APP_SECRET": secrets.token_urlsafe(24),
        "SECURE_SSL_REDIRECT": "0",
        "SELFCARE_BILL_RUN_CHUNK": str(args.chunk),
        # One chunk at a time per process: chunks are long, a prefetched one would wait.
        "CELERY_PREFETCH": "1",
        # The measured workers bill; the outbox relay's tasks (sending, measured by
        # benchmarks/notifications.py) go to the default queue, which nobody consumes here.
        "SELFCARE_BILL_RUN_QUEUE": "bill_runs",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    worker = None
    broker_server = None
    db_created = False
    load_before = os.getloadavg()[0]
    try:
        log(f"database {args.db_name}, broker {broker}, N={args.accounts}, load average {load_before:.2f}")
        database_recreate(db_url)
        db_created = True
        import django

        django.setup()
        from django.db import connection
        from django.db.models import Count

        from billing.models import Bill, BillLine, BillRun
        from billing.runs import bill_run_start
        from billing.tasks import bill_run_enqueue
        from notifications.models import Message
        from selfcare.celery import app

        started = time.monotonic()
        seeded = seed_in_child(accounts=args.accounts)
        figures["seed_s"] = round(time.monotonic() - started, 1)
        expected = seeded["expected"]

        try:
            broker_server = subprocess.Popen(
                [args.redis_server, "--port", str(broker_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdout=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise BenchError(f"cannot start {args.redis_server} for the broker: {exc}") from exc
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(broker).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or broker_server.poll() is not None:
                    raise BenchError("the broker's redis-server did not start") from None
                time.sleep(0.1)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "selfcare", "worker", "-P", args.pool,
             f"--concurrency={args.workers}", "-Q", "bill_runs", "-l", "warning", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise BenchError("the Celery worker did not start")

        dsn = db_url
        involved = Involved(dsn, worker.pid, [broker_server.pid])
        sampler = Sampler(involved)
        sampler.sample()  # the CPU times before
        sampler.start()
        log(f"bill run: {args.accounts} accounts, chunks of {args.chunk}, {args.workers} worker processes")
        load_at_start = os.getloadavg()[0]
        t0 = time.monotonic()
        run = bill_run_start(period=seeded["period"])
        bill_run_enqueue(run=run)
        last = -1
        while True:
            run.refresh_from_db()
            if run.chunks_done != last:
                last = run.chunks_done
                log(f"  {time.monotonic() - t0:6.1f} s  {run.progress_percent:3d}%  chunks {run.chunks_done}/"
                    f"{run.chunks_total}  billed {run.billed + run.estimated}")  # fmt: skip
            if run.is_over():
                break
            if time.monotonic() - t0 > args.timeout or worker.poll() is not None:
                raise BenchError(f"the run did not finish (status {run.status}, {run.chunks_done} chunks done)")
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        load_after = os.getloadavg()[0]
        sampler.stop.set()
        sampler.join()
        sampler.sample()  # the CPU times after
        involved.close()
        cpu_db = sampler.cpu_seconds(set(sampler.last_cpu) - involved.app_pids)
        cpu_app = sampler.cpu_seconds(involved.app_pids)

        counts = {
            "bills": Bill.objects.filter(period=seeded["period"]).count(),
            "estimated": Bill.objects.filter(period=seeded["period"], is_estimated=True).count(),
            "lines": BillLine.objects.filter(bill__period=seeded["period"]).count(),
            "messages": Message.objects.filter(event="bill_issued").count(),
        }
        statuses = dict(Message.objects.values_list("status").annotate(c=Count("pk")).order_by())
        run_counts = {"billed": run.billed, "estimated": run.estimated, "skipped": run.skipped, "failed": run.failed}
        log("checking a sample of bills against bill_compute")
        problems = sample_check(seeded["period"], SAMPLE)
        connection.close()

        log("baseline: binary COPY of the same bill and line rows into scratch tables")
        with tempfile.TemporaryDirectory(prefix="bench-billrun-") as workdir:
            copy = copy_baseline(dsn, seeded["period"], args.workers, Path(workdir))

        bills_per_s = counts["bills"] / seconds
        copy_bills_per_s = copy["bills"] / copy["seconds"]
        ratio = bills_per_s / copy_bills_per_s
        peak_mib = sampler.peak_kib / 1024
        pss_mib = sampler.peak_pss_kib / 1024
        counts_right = (
            run.status == BillRun.Status.FINISHED
            and counts["bills"] == expected["bills"]
            and counts["estimated"] == expected["estimated"] == run.estimated
            and run.skipped == expected["skipped"]
            and run.billed + run.estimated == expected["bills"]
            and counts["lines"] == expected["lines"]
            and counts["messages"] == expected["messages"]
            and copy["bills"] == counts["bills"]
            and copy["lines"] == counts["lines"]
        )
        passed = bool(
            args.accounts >= BAR_N and seconds < BAR_SECONDS and peak_mib < BAR_MEMORY_MIB and counts_right
            and not problems
        )  # fmt: skip
        figures.update(
            {
                "run_s": round(seconds, 2),
                "bills_per_s": round(bills_per_s),
                "copy_s": round(copy["seconds"], 2),
                "copy_bills_per_s": round(copy_bills_per_s),
                "copy_mib": round(copy["bytes"] / 2**20, 1),
                "ratio_to_copy": round(ratio, 3),
                "peak_rss_mib": round(peak_mib, 1),
                "peak_pss_mib": round(pss_mib, 1),
                "peak_rss_mib_by_role": {role: round(kib / 1024, 1) for role, kib in sampler.peak_parts.items()},
                "cpu_s": {"app": round(cpu_app, 1), "db": round(cpu_db, 1)},
                "counts": counts,
                "expected": expected,
                "run": run_counts,
                "message_statuses": statuses,
                "sample_checked": SAMPLE,
                "sample_mismatches": problems[:10],
                "counts_right": counts_right,
                "chunks": run.chunks_total,
                "cores": os.cpu_count(),
                "loadavg": {
                    "before": round(load_before, 2),
                    "at_start": round(load_at_start, 2),
                    "after": round(load_after, 2),
                },
                "seed_s": figures["seed_s"],
                "bar": {
                    "accounts": BAR_N,
                    "max_s": BAR_SECONDS,
                    "max_peak_mib": BAR_MEMORY_MIB,
                    "goal_ratio_to_copy": GOAL_RATIO,
                },
                "pass": passed,
            }
        )
        print()
        print(
            f"{os.cpu_count()} cores, a Celery worker ({args.pool} pool, concurrency {args.workers}), chunks of {args.chunk} accounts"
        )
        print(f"{'accounts':>28} {args.accounts:>12,}")
        print(f"{'bills / lines / messages':>28} {counts['bills']:>12,} / {counts['lines']:,} / {counts['messages']:,}")
        print(f"{'estimated / skipped':>28} {run.estimated:>12,} / {run.skipped:,}")
        print(f"{'bill run':>28} {seconds:>12.2f} s  {bills_per_s:>10,.0f} bills/s")
        print(f"{'raw binary COPY':>28} {copy['seconds']:>12.2f} s  {copy_bills_per_s:>10,.0f} bills/s "
              f"({copy['bytes'] / 2**20:.0f} MiB of bills and lines)")  # fmt: skip
        print(f"{'ratio to COPY':>28} {ratio:>12.3f}  (compass goal {GOAL_RATIO})")
        print(f"{'peak memory (RSS, summed)':>28} {peak_mib:>12.1f} MiB  (PSS, shared buffers counted once: "
              f"{pss_mib:.1f} MiB)")  # fmt: skip
        by_role = ", ".join(f"{role} {kib / 1024:.0f}" for role, kib in sorted(sampler.peak_parts.items()))
        print(f"{'at the peak, MiB':>28}  {by_role}")
        print(f"{'CPU seconds':>28} {cpu_app:>12.1f} app, {cpu_db:.1f} PostgreSQL")
        print(f"{'counts right / sample':>28} {counts_right!s:>12} / {len(problems)} of {SAMPLE} differ")
        print(f"{'load average':>28} {load_before:>12.2f} before, {load_after:.2f} after")
        if load_before > BUSY_LOAD:
            print(f"note: load average was {load_before:.1f} before the run (not a quiet machine)")
        print(
            f"bar: {BAR_N:,} accounts in < {BAR_SECONDS:.0f} s, peak < {BAR_MEMORY_MIB:.0f} MiB, counts right "
            f"-> {'PASS' if passed else 'FAIL'}"
        )
        print(json.dumps(figures, default=str))
        return 0 if passed else 1
    except BenchError as exc:
        log(f"benchmark error: {exc}")
        print(json.dumps({**figures, "pass": False, "error": str(exc).splitlines()[0]}))
        return 2
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({**figures, "pass": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}))
        return 2
    finally:
        if worker is not None:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(worker.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if broker_server is not None:
            broker_server.terminate()
            broker_server.wait(timeout=10)
        if db_created and not args.keep_db:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: S110
                pass
            try:
                database_drop(db_url)
            except Exception as exc:
                log(f"could not drop {args.db_name}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
