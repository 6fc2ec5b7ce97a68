"""Portal pages under load, spread over many logged-in subscribers, against a bare
Django view in the same run.

    .venv/bin/python benchmarks/portal.py [--subscribers 1000] [--duration 15] [--workers 3]
    scripts/with-services.sh .venv/bin/python benchmarks/portal.py

What it does, each run:

1. (Re)creates the database `selfcare_bench` on the PostgreSQL of DATABASE_URL
   (default postgres://postgres@127.0.0.1:5432/selfcare; only the name changes),
   migrates it and seeds it (seed(), the only function that calls the app's
   internals):
   - the demo (billing.demo.demo_seed: 200 subscribers with 1 to 3 services of
     every kind, 36 months): agencies, plans, staff, and rows that are not the
     measured subscribers' (they are 2 % of the bills: kept for the variety of
     plans and kinds, not for volume);
   - --subscribers N measured subscribers (default 1000), each with 3 accounts
     (electricity, water, mobile) and 120 months of consumption and bills,
     priced by billing.demo.history_build (the app's own pricing) in parallel
     processes and written with COPY: 1000 subscribers are 360,000 bills, about
     870,000 bill lines and 600,000 consumption rows, in under a minute on 2 cores;
   then the overdue sweep, VACUUM ANALYZE.
2. Logs each measured subscriber in server-side (a session made by the session
   engine's SessionStore, as django.contrib.auth.login makes it, plus the CSRF
   cookie a browser would send).
3. Serves the app with gunicorn (sync workers, default 3 for 2 cores), DEBUG off,
   PostgreSQL with persistent connections (CONN_MAX_AGE, 600 s unless set),
   settings benchmarks.settings (the app's settings + the bare view's URL), and
   checks a sample of subscribers (first, last and some between) on every page:
   200 with their own cookie, and their own data on the page; fails loudly otherwise.
4. Loads each URL with wrk and a Lua script whose request() takes, request after
   request, the next subscriber's cookie and that subscriber's own URL (round
   robin; requests prepared with wrk.format in init()). Per URL, one after the
   other: the bare view (one row by primary key, same middleware, the same
   sessions), the dashboard, the bills list and the consumption page of the
   subscriber's electricity account; each first cold, then warm:
   - cold: this run's Redis keys are deleted first (sessions are cached_db, so
     they come back from PostgreSQL), then ONE pass over the subscribers, in
     order, each seen once: nothing a request finds in the cache was put there
     for the same subscriber by this pass. One wrk thread, which stops as it
     sends the last subscriber's request (see measure() in main() for why);
     the requests still in flight then (at most --connections) are served but
     not measured, so the figures cover at least N - 16 subscribers. "Cold" is the app's
     cache only: the gunicorn processes (imports, compiled templates,
     connections: a second of load per URL before the first cold pass) and
     PostgreSQL's buffers and the OS page cache are warm, as in a service that
     has been up for a while. A pass lasts as long as N requests take: for 1000
     subscribers 2 to 10 s here, long enough for a p99 of its own (about 10
     requests above it); the bare view's pass is the shortest, so its requests/s
     is the noisiest figure of the run (--subscribers raises them all);
   - warm: a short unmeasured warm-up, then `wrk -t2 -c16 -d15s` round robin,
     the two threads starting half the subscribers apart so they do not walk in
     lockstep, every subscriber seen over and over (1000 subscribers at a few
     hundred requests/s: each one every few seconds), so a cache hits only as
     often as such traffic lets it.
   Then the latency at the bar's load, for the bare view and each page alike:
   requests at random (Poisson) instants at 25 % of what the bare view served
   flat out, each timed from the instant it was due (open loop, see
   open_loop_run() for why wrk's p99 is not a page's latency), cold (cache
   emptied, one pass over the subscribers) then warm (--duration seconds).
5. Prints a table for each, then as its last line one JSON object with, per
   page and for warm and cold, requests/s, p50/p99 flat out, CPU per request,
   queries, the ratio to the bare view of the same temperature, the figures at
   the bar's load ("at_bar_load"), and "pass" against the bar: each page >= 25%
   of the bare view's requests/s flat out, and p99 < 50 ms at that load, with no
   error, no non-2xx response and (cold) every subscriber sent and every measured
   response a 200, warm and cold alike. Exit status 0 on pass, 1 on fail, 2 if it could not run.

Beside requests/s it reports the CPU milliseconds per request of the gunicorn
processes and of their PostgreSQL backends, and the ratio those predict
(cpu_ratio_to_bare): steadier than requests/s when something else uses the cores
(it warns when the load average is high before the run). The queries column is
counted in-process with CaptureQueriesContext, for one subscriber: its first
request after the cache is emptied (cold) and its second (warm).

--extra NAME=/path loads more URLs for comparison (not part of the bar; {account}
in the path is each subscriber's electricity account number); the BENCH_*
variables described in benchmarks/settings.py try an app change (session engine,
middleware, prepared statements, caches, variant URLconf or templates) without
editing the app; --dummy-cache ALIAS serves with that cache alias replaced by
DummyCache (aliases the app does not define are skipped, with a warning).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from operator import attrgetter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/selfcare"
BENCH_DB = "selfcare_bench"
MIN_RATIO = 0.25
BUSY_LOAD = 1.0  # 1-minute load average above which the machine is not quiet enough
MAX_P99_MS = 50.0

DEFAULT_SUBSCRIBERS = 1000
HISTORY_MONTHS = 120
SEED_CHUNK = 50  # subscribers priced and written per transaction
BACKGROUND_SUBSCRIBERS = 200
BACKGROUND_MONTHS = 36
COLD_MIN_RATE = 10  # requests/s below which a cold pass is given up (wrk -d ceiling)


class BenchError(Exception):
    """Something kept the benchmark from measuring; the message says what."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- setup ------------------------------------------------------------------


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found; installing it with apt-get")
        apt_get = shutil.which("apt-get") or "apt-get"
        subprocess.run([apt_get, "install", "-y", "-q", "wrk"], stdout=subprocess.DEVNULL, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError("wrk is not installed: install it (apt-get install wrk) and run the benchmark again.")


def bench_database_url(name: str) -> tuple[str, str]:
    """(bench database URL, maintenance database URL) from DATABASE_URL."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    parts = urlsplit(base)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise BenchError(f"the benchmark needs PostgreSQL, but DATABASE_URL is {parts.scheme}://…")
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres"))


def database_recreate(maintenance_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(maintenance_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL at {maintenance_url}: {exc}".strip()) from exc


def database_drop(maintenance_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_drop_at_exit(maintenance_url: str, name: str) -> None:
    """The run's database dropped as the benchmark ends, whatever happened: Django's
    own connections closed first (DROP … WITH (FORCE) would end them anyway), and a
    failure only logged, as it must not hide the run's own outcome."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: S110 - Django may not be set up if the run failed early
        pass
    try:
        database_drop(maintenance_url, name)
    except Exception as exc:
        log(f"could not drop {name}: {exc}")


def environment_set(database_url: str) -> None:
    """The served app's environment; this process uses it too, to seed."""
    if os.environ.get("CONN_MAX_AGE") == "0":
        raise BenchError("CONN_MAX_AGE=0 turns persistent connections off; unset it or give it seconds.")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "AFRICASTALKING_CALLBACK_TOKEN": secrets.token_urlsafe(24),
            "WHATSAPP_APP_SECRET": secrets.token_urlsafe(24),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            # Production settings need a broker; the measured pages enqueue nothing.
            "CELERY_BROKER_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
            "LOG_LEVEL": "WARNING",
        }
    )
    # Persistent connections, as in production (the app's default is 60 s); 600 s so
    # that no backend is replaced in the middle of a run and its CPU time lost.
    os.environ.setdefault("CONN_MAX_AGE", "600")
    os.environ["BENCH_CACHE_PREFIX"] = f"bench-portal-{secrets.token_hex(4)}"  # see benchmarks/settings.py


def copy_rows(cursor, model, objects: list, *, with_pk: bool = False) -> None:
    """Write unsaved model instances with COPY: what bulk_create does, without its
    per-field Python work (an order of magnitude faster for a million rows)."""
    from django.utils import timezone
    from psycopg import sql

    fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
    get = attrgetter(*(f.attname for f in fields))
    stamped = [i for i, f in enumerate(fields) if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    now = timezone.now()
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(f.column) for f in fields)
    )
    with cursor.copy(statement) as copy:
        for obj in objects:
            row = get(obj)
            if stamped:
                row = list(row)
                for i in stamped:
                    row[i] = now
            copy.write_row(row)


def seed(*, subscribers: int) -> dict:
    """Background demo plus the measured subscribers; returns what the pages need.

    The one place that uses the app's internals (models, demo data, services).
    """
    import datetime as dt
    import multiprocessing
    import random

    import psycopg
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone

    from accounts.models import Agency, Subscriber, User
    from billing import demo
    from billing.models import Bill, BillLine, Consumption, ServiceAccount, ServiceKind
    from billing.services import account_numbers_reserve, bills_flag_overdue

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    log(f"  migrated in {time.monotonic() - started:.1f} s")

    started = time.monotonic()
    report = demo.demo_seed(subscribers=BACKGROUND_SUBSCRIBERS, months=BACKGROUND_MONTHS)
    log(
        f"  background: {report.subscribers} subscribers, {report.accounts} accounts, "
        f"{report.bills} bills, {report.consumption_rows} consumption rows ({time.monotonic() - started:.1f} s)"
    )

    seed_started = started = time.monotonic()
    today = timezone.localdate()
    plans = demo.plans_ensure()
    kinds = [ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.MOBILE]
    plan_of = {
        kind: next(p for p in sorted(plans.values(), key=lambda p: p.code) if p.kind == kind and p.is_active)
        for kind in kinds
    }
    agencies = list(Agency.objects.order_by("code"))
    password = make_password(None)  # unusable: these subscribers only log in through their session
    users = User.objects.bulk_create(
        [
            User(
                email=f"bench{i:05d}@example.com",
                phone=f"+2165{i:07d}",
                password=password,
                first_name="Bench",
                last_name=f"{i:05d}",
            )
            for i in range(subscribers)
        ],
        batch_size=1000,
    )
    profiles = Subscriber.objects.bulk_create(
        [
            Subscriber(
                user=user,
                full_name=f"Bench Subscriber {i:05d}",
                national_id=f"9{i:07d}",
                agency=agencies[i % len(agencies)],
            )
            for i, user in enumerate(users)
        ],
        batch_size=1000,
    )
    numbers = iter(account_numbers_reserve(count=len(kinds) * subscribers))
    opened = demo.month_add(today.replace(day=1), -HISTORY_MONTHS - 1)
    accounts = ServiceAccount.objects.bulk_create(
        [
            ServiceAccount(
                number=next(numbers),
                subscriber=profile,
                kind=kind,
                plan=plan_of[kind],
                meter_number=f"B{10_000_000 + len(kinds) * i + k}",
                service_address=f"{i % 120 + 1} Avenue Habib Bourguiba, {profile.agency.city}",
                opened_on=opened,
            )
            for i, profile in enumerate(profiles)
            for k, kind in enumerate(kinds)
        ],
        batch_size=1000,
    )
    log(
        f"  subscribers: {subscribers} users and profiles, {len(accounts)} accounts ({time.monotonic() - started:.1f} s)"
    )

    # History: priced by the app's code in one process per core, written with COPY.
    started = time.monotonic()
    plans_by_pk = {p.pk: p for p in plans.values()}
    per_chunk = SEED_CHUNK * len(kinds)
    chunks = [accounts[i : i + per_chunk] for i in range(0, len(accounts), per_chunk)]
    workers = max(1, min(os.cpu_count() or 1, len(chunks)))
    bill_ids = "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"

    def history_write(worker: int) -> None:
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            for index in range(worker, len(chunks), workers):
                consumptions, bills, lines = demo.history_build(
                    accounts=chunks[index],
                    plans=plans_by_pk,
                    months=HISTORY_MONTHS,
                    today=today,
                    rng=random.Random(index),  # the same data whatever the number of processes
                )
                with conn.transaction(), conn.cursor() as cursor:
                    ids = cursor.execute(bill_ids, [Bill._meta.db_table, Bill._meta.pk.column, len(bills)]).fetchall()
                    for bill, (pk,), bill_lines in zip(bills, ids, lines, strict=True):
                        bill.pk = pk
                        for line in bill_lines:
                            line.bill_id = pk
                    copy_rows(cursor, Consumption, consumptions)
                    copy_rows(cursor, Bill, bills, with_pk=True)
                    copy_rows(cursor, BillLine, [line for bill_lines in lines for line in bill_lines])

    connections.close_all()  # the children open their own; none may share the parent's socket
    context = multiprocessing.get_context("fork")  # the target is a closure: fork, never pickled
    processes = [context.Process(target=history_write, args=(w,), daemon=True) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise BenchError(f"seeding the history failed in {len(failed)} process(es) (traceback above)")
    flagged = bills_flag_overdue(today=today)
    log(
        f"  history: {HISTORY_MONTHS} months for {len(accounts)} accounts, {workers} processes, "
        f"{flagged} bills flagged overdue ({time.monotonic() - started:.1f} s)"
    )

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics; no autovacuum during the runs
        # The seeding wrote ~500 MB of WAL: without this, the checkpoint it sets off
        # spreads its writes over the next minutes, i.e. over the measurements (seen
        # in PostgreSQL's log, 213 s long, covering every pass). A service that has
        # been up a while has no such backlog.
        cursor.execute("CHECKPOINT")
    log(f"  vacuum analyze, checkpoint ({time.monotonic() - started:.1f} s)")

    newest = dict(
        Bill.objects.filter(account__subscriber__in=profiles)
        .order_by("account__subscriber_id", "-period", "account__number")
        .distinct("account__subscriber_id")
        .values_list("account__subscriber_id", "number")
    )
    by_subscriber: dict[int, list] = {}
    for account in accounts:
        by_subscriber.setdefault(account.subscriber_id, []).append(account)
    return {
        "subscribers": [
            {
                "user": user,
                "name": profile.full_name,
                "agency_pk": profile.agency_id,
                "accounts": [(a.number, a.display_number) for a in by_subscriber[profile.pk]],
                "newest_bill": newest[profile.pk],
            }
            for user, profile in zip(users, profiles, strict=True)
        ],
        "totals": {
            "bills": Bill.objects.count(),
            "consumption_rows": Consumption.objects.count(),
            "bill_lines": BillLine.objects.count(),
            "accounts": ServiceAccount.objects.count(),
            "subscribers": Subscriber.objects.count(),
        },
        "history_start": dt.date.isoformat(demo.month_add(today.replace(day=1), -HISTORY_MONTHS)),
        "session_cookie_name": settings.SESSION_COOKIE_NAME,
        "seconds": round(time.monotonic() - seed_started, 1),
    }


def session_create(user) -> str:
    """A logged-in session, made the way django.contrib.auth.login makes one."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    backend = next(
        (b for b in settings.AUTHENTICATION_BACKENDS if b.endswith("EmailOrPhoneBackend")),
        settings.AUTHENTICATION_BACKENDS[-1],
    )
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = backend
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    if not store.session_key:
        raise BenchError(f"session engine {settings.SESSION_ENGINE} gave no session key")
    return store.session_key


def caches_clear() -> None:
    """Remove this run's keys from the Redis caches (they carry BENCH_CACHE_PREFIX)."""
    from django.conf import settings

    prefix = os.environ.get("BENCH_CACHE_PREFIX")
    locations = {c["LOCATION"] for c in settings.CACHES.values() if c["BACKEND"].endswith("RedisCache")}
    if not prefix or not locations:
        return
    import redis

    for location in locations:
        for url in [location] if isinstance(location, str) else location:
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])


def caches_described() -> str:
    from django.conf import settings

    return ", ".join(f"{alias} {conf['BACKEND'].rsplit('.', 1)[-1]}" for alias, conf in settings.CACHES.items())


def csrf_cookie_value() -> str:
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.utils.crypto import get_random_string

    return get_random_string(CSRF_SECRET_LENGTH, allowed_chars=CSRF_ALLOWED_CHARS)


def page_path(page: dict, subscriber: dict) -> str:
    return page["path"].format(account=subscriber["accounts"][0][0], agency=subscriber["agency_pk"])


def queries_per_page(pages: dict[str, dict], subscribers: list[dict], cookie_name: str) -> dict[str, dict[str, int]]:
    """Queries each page runs, counted in-process (informational): a subscriber's
    request right after the cache is emptied (cold, as in the cold runs) and the
    next one (warm)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    def client_for(subscriber: dict) -> Client:
        client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)  # a 500 is reported below
        client.cookies[cookie_name] = subscriber["session_key"]
        return client

    warmer, measured = client_for(subscribers[0]), client_for(subscribers[-1])
    for page in pages.values():
        warmer.get(page_path(page, subscribers[0]))  # imports, translations, template compilation
    counts = {}
    for name, page in pages.items():
        path = page_path(page, subscribers[-1])
        counts[name] = {}
        caches_clear()
        for temperature in ("cold", "warm"):
            with CaptureQueriesContext(connection) as captured:
                response = measured.get(path)
            if response.status_code != 200:
                raise BenchError(f"{path} answered {response.status_code} in-process")
            counts[name][temperature] = len(captured)
    return counts


# --- serving ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_start(port: int, workers: int, log_file: Path) -> subprocess.Popen:
    try:
        import gunicorn  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"gunicorn is not installed in {sys.executable}'s environment.") from exc
    command = [
        sys.executable, "-m", "gunicorn", "selfcare.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--chdir", str(ROOT),
        "--log-level", "warning",
        "--error-logfile", str(log_file),
    ]  # fmt: skip
    help_text = subprocess.run([*command[:3], "--help"], capture_output=True, text=True, check=False).stdout
    if "--no-control-socket" in help_text:
        command.append("--no-control-socket")  # gunicorn >= 24 would open ~/.gunicorn/gunicorn.ctl
    with log_file.open("ab") as log_output:  # Django's own log (tracebacks) goes to stderr
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
            stdout=log_output,
            stderr=log_output,
            start_new_session=True,  # its own process group: stopped with its workers
        )


def gunicorn_stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def http_get(port: int, path: str, cookie: str | None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": f"127.0.0.1:{port}"}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def wait_until_serving(process: subprocess.Popen, port: int, path: str, log_file: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with status {process.returncode}:\n{tail(log_file)}")
        try:
            status, _, _ = http_get(port, path, None)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not answer {path} within {timeout:.0f} s:\n{tail(log_file)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no gunicorn log)"


def verify(port: int, name: str, page: dict, sample: list[dict]) -> None:
    """200 with each sampled subscriber's cookie, and that subscriber's own data on
    the page; loudly otherwise."""
    for subscriber in sample:
        path = page_path(page, subscriber)
        status, headers, body = http_get(port, path, subscriber["cookie"])
        if status != 200:
            where = f" to {headers['location']}" if "location" in headers else ""
            hint = " (is the session cookie accepted?)" if status in {301, 302, 403} else ""
            raise BenchError(f"{name} {path} answered {status}{where} for {subscriber['name']}, not 200{hint}")
        missing = [text for text in page.get("expect", lambda s: [])(subscriber) if text not in body]
        if missing:
            raise BenchError(f"{name} {path} answered 200 without {missing!r}: not {subscriber['name']}'s page?")


# --- CPU accounting -----------------------------------------------------------
# Requests/s moves with whatever else runs on the machine; the CPU seconds the
# server (gunicorn master and workers) and its PostgreSQL backends spend per
# request barely do, so they are reported beside it (Linux /proc; else omitted).


def _proc_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_fields(int(entry))
            if fields and int(fields[1]) == parent:
                pids.append(int(entry))
    return pids


def _pg_backends(maintenance_url: str, db_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name]).fetchall()
    return [pid for (pid,) in rows]


def cpu_snapshot(server_pid: int, maintenance_url: str, db_name: str) -> dict[str, dict[int, float]] | None:
    """CPU seconds so far of the server's processes and of the database's backends."""
    if not os.path.isdir("/proc"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    snapshot: dict[str, dict[int, float]] = {"app": {}, "db": {}}
    try:
        groups = {"app": [server_pid, *_children(server_pid)], "db": _pg_backends(maintenance_url, db_name)}
    except Exception:  # a diagnostic: never fail the run over it
        return None
    for group, pids in groups.items():
        for pid in pids:
            fields = _proc_fields(pid)
            if fields:
                snapshot[group][pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return snapshot


def cpu_settled(server_pid: int, maintenance_url: str, db_name: str, timeout: float = 5) -> dict | None:
    """A snapshot once the server has finished what the client left in flight."""
    snapshot = cpu_snapshot(server_pid, maintenance_url, db_name)
    deadline = time.monotonic() + timeout
    while snapshot and time.monotonic() < deadline:
        time.sleep(0.1)
        latest = cpu_snapshot(server_pid, maintenance_url, db_name)
        if not latest or sum(latest["app"].values()) - sum(snapshot["app"].values()) < 0.005:
            return latest
        snapshot = latest
    return snapshot


def cpu_per_request(before: dict | None, after: dict | None, requests: int) -> dict[str, float] | None:
    if not before or not after or not requests:
        return None
    spent = {
        group: sum(cpu - before[group].get(pid, 0.0) for pid, cpu in after[group].items()) for group in ("app", "db")
    }
    return {f"{group}_cpu_ms": round(seconds * 1000 / requests, 3) for group, seconds in spent.items()}


# --- load -------------------------------------------------------------------

# wrk's script: one line per subscriber in the entries file ("cookie<TAB>path"),
# requests built with wrk.format once, in init(); request() takes the next one.
# "cycle": round robin until -d runs out; thread i of n starts at subscriber
# i*N/n, so the threads do not walk in lockstep. "once": one pass; delay() hands
# out the thread's share, and the thread stops as it sends the last one (why:
# measure() in main()), writing a line to the done file: wrk's main thread sleeps
# for all of -d whatever its threads do, so wrk_run() then sends SIGINT, which
# makes wrk report at once.
ROUND_ROBIN_LUA = r"""
local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file, count = args[1], tonumber(args[3])
   once, done_file = args[2] == "once", args[4]
   requests = {}
   for line in io.lines(file) do
      local cookie, path = line:match("^([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("GET", path, { Cookie = cookie })
   end
   local n = #requests
   first = math.floor(thread_index * n / count)
   share = math.floor((thread_index + 1) * n / count) - first
   position, granted, waiting = first, 0, 0
   statuses = {}
   if not once then
      delay, response = nil, nil -- wrk then skips both, and parses no response body
   end
end

function delay()
   if granted < share then
      granted, waiting = granted + 1, waiting + 1
      return 0
   end
   return 3600000 -- the share is out and the thread stopping: send nothing more
end

function request()
   local r = requests[position % #requests + 1]
   if once then
      if waiting == 0 then
         return r -- wrk calls request() once to check the script before the run: nothing is sent
      end
      waiting = waiting - 1
   end
   position = position + 1
   if once and position - first == share then
      local done = io.open(done_file, "a")
      done:write("done\n")
      done:close()
      wrk.thread:stop()
   end
   return r
end

function response(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local sent, other = 0, {}
   for _, thread in ipairs(threads) do
      sent = sent + thread:get("position") - thread:get("first")
      for status, n in pairs(thread:get("statuses")) do
         if status ~= 200 then
            other[#other + 1] = string.format("%d x %d", n, status)
         end
      end
   end
   io.write(string.format("roundrobin: sent %d; not 200: %s\n", sent, table.concat(other, ", ")))
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION = re.compile(r"^\s*([\d.]+)(us|ms|s|m|h)\s*$")


def to_ms(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_parse(output: str) -> dict:
    def find(pattern: str) -> re.Match | None:
        return re.search(pattern, output, re.MULTILINE)

    rps = find(r"^Requests/sec:\s+([\d.]+)")
    p50 = find(r"^\s+50%\s+(\S+)")
    p99 = find(r"^\s+99%\s+(\S+)")
    total = find(r"^\s+(\d+) requests in ([\d.]+\w+)")
    sent = find(r"^roundrobin: sent (\d+); not 200: (.*)$")
    if not (rps and p50 and p99 and total and sent):
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    non_2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    return {
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": round(to_ms(p50.group(1)), 2),
        "p99_ms": round(to_ms(p99.group(1)), 2),
        "requests": int(total.group(1)),
        "seconds": round(to_ms(total.group(2)) / 1000, 2),
        "sent": int(sent.group(1)),
        "not_200": sum(int(n) for n in re.findall(r"(\d+) x \d+", sent.group(2))),
        **({"statuses": sent.group(2).strip()} if sent.group(2).strip() else {}),
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "timeouts": int(errors.group(4)) if errors else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def wrk_run(
    wrk: str, url: str, script: Path, entries: Path, *, once: bool, threads: int, connections: int, duration: float
) -> dict:
    done_file = entries.with_suffix(".done")
    done_file.unlink(missing_ok=True)
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s",
        "-s", str(script), url, "--", str(entries), "once" if once else "cycle", str(threads), str(done_file),
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        if once:
            while process.poll() is None:
                if done_file.exists() and done_file.stat().st_size >= threads * len("done\n"):
                    process.send_signal(signal.SIGINT)  # every thread has stopped: report now
                    break
                time.sleep(0.005)
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise BenchError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout.strip()}")
    return wrk_parse(stdout)


def entries_write(path: Path, page: dict, subscribers: list[dict]) -> Path:
    lines = []
    for subscriber in subscribers:
        cookie, url = subscriber["cookie"], page_path(page, subscriber)
        if any(c in cookie + url for c in "\t\r\n"):
            raise BenchError(f"cannot pass {url!r} with cookie {cookie!r} to wrk")
        lines.append(f"{cookie}\t{url}\n")
    path.write_text("".join(lines))
    return path


# --- latency at a fixed offered load -------------------------------------------
# wrk keeps -c connections busy back to back: it finds the most a server can do,
# and at that point every request waits behind the others (at -c16 on 3 workers,
# 13 requests queue all the time), so its p99 is the length of a queue, not the
# time a page takes: on this machine even the bare one-row view has a p99 of
# 35-45 ms there. Subscribers do not wait for each other's pages before asking
# for theirs: they arrive independently. So the latency is measured the way that
# traffic comes: requests sent at random (Poisson) instants at a fixed rate,
# whatever the answers take (open loop), each on its own connection (as the
# sync workers close it after each answer), and timed from the instant it was
# due, so a late client counts against the server, never for it. The rate is the
# bar's own: MIN_RATIO of what the bare view serves flat out in the same run,
# offered to the bare view and to every page alike.


async def _one_request(port: int, request: bytes, due: float, results: list) -> None:
    status = 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        head = await reader.readline()
        await reader.read()  # to the end: the worker closes the connection after the answer
        writer.close()
        status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    results.append((time.monotonic() - due, status))


async def _open_loop(port: int, requests: list[bytes], rate: float, count: int, seed: int) -> list:
    rng = random.Random(seed)
    results: list = []
    tasks = []
    due = time.monotonic() + 0.05
    for index in range(count):
        due += rng.expovariate(rate)
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(_one_request(port, requests[index % len(requests)], due, results)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return results


def open_loop_run(port: int, page: dict, subscribers: list[dict], *, rate: float, count: int, seed: int) -> dict:
    """`count` requests at Poisson instants of mean `rate`/s, subscriber after
    subscriber (round robin from a seeded start); latency from each one's due instant."""
    start = seed % len(subscribers)
    ordered = subscribers[start:] + subscribers[:start]
    requests = [
        (
            f"GET {page_path(page, s)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {s['cookie']}\r\n"
            "Accept-Language: fr\r\nConnection: close\r\n\r\n"
        ).encode()
        for s in ordered
    ]
    started = time.monotonic()
    results = asyncio.run(_open_loop(port, requests, rate, count, seed))
    seconds = time.monotonic() - started
    latencies = sorted(latency * 1000 for latency, _ in results)
    not_200 = sum(1 for _, status in results if status != 200)

    def percentile(fraction: float) -> float:
        return round(latencies[min(len(latencies) - 1, max(0, round(fraction * len(latencies)) - 1))], 2)

    return {
        "offered_rps": round(rate, 1),
        "achieved_rps": round(len(results) / seconds, 1),
        "requests": len(results),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "max_ms": round(latencies[-1], 2),
        "not_200": not_200,
        "clean": not_200 == 0 and len(results) == count,
    }


# --- main -------------------------------------------------------------------


def cpu_cell(entry: dict, key: str) -> str:
    return f"{entry[key]:.2f}" if key in entry else "-"


def ratios(entry: dict, bare: dict) -> None:
    entry["ratio_to_bare"] = round(entry["rps"] / bare["rps"], 3) if bare["rps"] else 0.0
    if "app_cpu_ms" in entry and "app_cpu_ms" in bare:
        # What the ratio would be if CPU were the only limit: steadier than req/s on a busy machine.
        page_cpu = entry["app_cpu_ms"] + entry["db_cpu_ms"]
        entry["cpu_ratio_to_bare"] = round((bare["app_cpu_ms"] + bare["db_cpu_ms"]) / page_cpu, 3) if page_cpu else 0.0


def table_print(title: str, pages: dict, figures: dict, temperature: str) -> None:
    width = max(12, *(len(name) for name in pages))
    print(title)
    header = (
        f"{'page':<{width}} {'path':<38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} "
        f"{'app CPU':>8} {'db CPU':>7} {'queries':>7} {'errors':>6} | {'at load':>8} {'p50 ms':>7} {'p99 ms':>7}  result"
    )
    print(header)
    print("-" * len(header))
    for name, page in pages.items():
        entry = figures[name][temperature]
        at_load = entry["at_bar_load"]
        ratio = f"{entry['ratio_to_bare']:.2f}" if "ratio_to_bare" in entry else "1.00"
        if name == "bare":
            verdict = "baseline" if entry["clean"] else "FAIL"
        elif page.get("extra"):
            verdict = "(extra)"
        else:
            verdict = "pass" if entry["pass"] else "FAIL"
        print(
            f"{name:<{width}} {page['path']:<38} {entry['rps']:>9.1f} {entry['p50_ms']:>8.2f} {entry['p99_ms']:>8.2f} "
            f"{ratio:>6} {cpu_cell(entry, 'app_cpu_ms'):>8} {cpu_cell(entry, 'db_cpu_ms'):>7} "
            f"{entry['queries']:>7} {entry['errors'] + max(entry['non_2xx'], entry['not_200']):>6} | "
            f"{at_load['achieved_rps']:>8.1f} {at_load['p50_ms']:>7.2f} {at_load['p99_ms']:>7.2f}  {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    # Production serves with Redis (shared cache, cached_db sessions); so does the
    # benchmark, on a Redis database of its own when none is given.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--subscribers",
        type=int,
        default=DEFAULT_SUBSCRIBERS,
        help=f"logged-in subscribers the load is spread over, round robin (default {DEFAULT_SUBSCRIBERS})",
    )
    parser.add_argument("--duration", type=float, default=15, help="seconds of warm load per URL (default 15)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured load before each (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3, for 2 cores)")
    parser.add_argument("--db-name", default=BENCH_DB, help=f"database to (re)create (default {BENCH_DB})")
    parser.add_argument("--keep-db", action="store_true", help="leave the database in place afterwards")
    parser.add_argument(
        "--dummy-cache",
        action="append",
        default=[],
        metavar="ALIAS",
        help="serve with cache ALIAS replaced by DummyCache, if the app defines it (repeatable)",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also load PATH ({account}: the subscriber's electricity account) and report it; not part of the bar",
    )
    args = parser.parse_args(argv)
    if args.subscribers < max(2, args.threads):
        parser.error(f"--subscribers must be at least 2 and at least --threads ({args.threads})")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")

    figures: dict = {"benchmark": "portal"}
    process = None
    maintenance_url = None
    db_created = False
    workdir = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    load_before = os.getloadavg()[0]
    try:
        wrk = wrk_path()
        if load_before > BUSY_LOAD:
            log(
                f"warning: load average {load_before:.1f} before the run: other work shares the cores; figures will be low and noisy"
            )
        database_url, maintenance_url = bench_database_url(args.db_name)
        environment_set(database_url)
        if args.dummy_cache:
            os.environ["BENCH_DUMMY_CACHES"] = ",".join(args.dummy_cache)
        (workdir / "static").mkdir()
        os.environ["BENCH_STATIC_ROOT"] = str(workdir / "static")
        log(f"database: {args.db_name} (re)created; seeding {args.subscribers} subscribers")
        database_recreate(maintenance_url, args.db_name)
        db_created = True

        import django

        django.setup()
        from django.conf import settings
        from django.db import connections

        for alias in args.dummy_cache:
            if not settings.CACHES.get(alias, {}).get("BACKEND", "").endswith("DummyCache"):
                log(f"warning: --dummy-cache {alias}: the app defines no such cache; ignored")

        seeded = seed(subscribers=args.subscribers)
        subscribers = seeded["subscribers"]
        cookie_name = seeded["session_cookie_name"]
        started = time.monotonic()
        for subscriber in subscribers:
            subscriber["session_key"] = session_create(subscriber["user"])
            # What a browser that has seen a page sends: the session and the CSRF cookie
            # (without the latter, every response would set a fresh one).
            subscriber["cookie"] = (
                f"{cookie_name}={subscriber['session_key']}; {settings.CSRF_COOKIE_NAME}={csrf_cookie_value()}"
            )
        log(f"  sessions: {len(subscribers)} ({time.monotonic() - started:.1f} s)")
        count = len(subscribers)
        sample = [subscribers[i] for i in sorted({0, 1, count // 4, count // 2, 3 * count // 4, count - 1})]

        pages: dict[str, dict] = {
            "bare": {"path": "/bare/{agency}/"},
            "dashboard": {
                "path": "/fr/dashboard/",
                "expect": lambda s: [s["name"], *(display for _, display in s["accounts"])],
            },
            "bills": {"path": "/fr/bills/", "expect": lambda s: [s["newest_bill"]]},
            "consumption": {
                "path": "/fr/accounts/{account}/consumption/",
                "expect": lambda s: [s["accounts"][0][1], "consumption-chart"],
            },
        }
        for extra in args.extra:
            name, sep, path = extra.partition("=")
            if not sep or not path.startswith("/") or name in pages:
                raise BenchError(f"--extra wants NAME=/path with a new name, not {extra!r}")
            pages[name] = {"path": path, "extra": True}
            try:
                page_path(pages[name], subscribers[0])
            except (KeyError, IndexError, ValueError) as exc:
                raise BenchError(f"--extra {extra!r}: the only placeholder is {{account}} ({exc!r})") from None
        queries = queries_per_page(pages, subscribers, cookie_name)
        connections.close_all()

        port = free_port()
        gunicorn_log = workdir / "gunicorn.log"
        log(
            f"serving: gunicorn, {args.workers} sync workers, 127.0.0.1:{port}, CONN_MAX_AGE={os.environ['CONN_MAX_AGE']}"
        )
        process = gunicorn_start(port, args.workers, gunicorn_log)
        wait_until_serving(process, port, page_path(pages["bare"], subscribers[0]), gunicorn_log)

        def check(name: str) -> None:
            try:
                verify(port, name, pages[name], sample)
            except BenchError as exc:
                raise BenchError(f"{exc}\n{tail(gunicorn_log)}") from None
            if process.poll() is not None:
                raise BenchError(f"gunicorn died during the {name} run:\n{tail(gunicorn_log)}")

        for name in pages:
            check(name)
        log(f"verified: {len(sample)} subscribers (first, last and between) see their own data on every page")

        url = f"http://127.0.0.1:{port}/"
        script = workdir / "roundrobin.lua"
        script.write_text(ROUND_ROBIN_LUA)
        load = {"threads": args.threads, "connections": args.connections}
        entries = {name: entries_write(workdir / f"{name}.tsv", page, subscribers) for name, page in pages.items()}

        def measure(name: str, *, once: bool) -> dict:
            before = cpu_snapshot(process.pid, maintenance_url, args.db_name)
            if once:
                # One wrk thread, which stops as it sends the last subscriber's request:
                # a sync worker that accepts a connection blocks until a request comes, so
                # no connection may be left open and idle while others wait for an answer
                # (in the tail of a pass, or while a second thread finishes its share).
                # The last requests in flight are served but not measured.
                ceiling = max(60.0, count / COLD_MIN_RATE)
                result = wrk_run(
                    wrk,
                    url,
                    script,
                    entries[name],
                    once=True,
                    threads=1,
                    connections=args.connections,
                    duration=ceiling,
                )
                after = cpu_settled(process.pid, maintenance_url, args.db_name)
                served = result["sent"]
            else:
                result = wrk_run(wrk, url, script, entries[name], once=False, duration=args.duration, **load)
                after = cpu_snapshot(process.pid, maintenance_url, args.db_name)
                served = result["requests"]
            result.update(cpu_per_request(before, after, served) or {})
            result["queries"] = queries[name]["cold" if once else "warm"]
            result["clean"] = result["errors"] == 0 and result["non_2xx"] == 0 and result["not_200"] == 0
            if once:
                # One pass: every subscriber sent once, all but those still in flight measured.
                result["complete"] = result["sent"] == count and result["requests"] >= count - args.connections
                result["clean"] = result["clean"] and result["complete"]
            if not result["clean"]:
                log(f"  {name}: errors or responses other than 200 ({result.get('statuses') or 'see wrk'}):")
                log(tail(gunicorn_log, 15))
            return result

        if args.warmup > 0:
            # The processes' own warm-up (imports, compiled templates, connections):
            # the cold runs start with the app's cache emptied, not with new processes.
            for name in pages:
                wrk_run(wrk, url, script, entries[name], once=False, duration=1, **load)

        for name, page in pages.items():
            log(f"load: {name} {page['path']}: cold, one pass over {count} subscribers")
            caches_clear()
            cold = measure(name, once=True)
            check(name)
            if args.warmup > 0:
                wrk_run(wrk, url, script, entries[name], once=False, duration=args.warmup, **load)
            log(f"load: {name} {page['path']}: warm, {args.duration:g} s round robin, {args.connections} clients")
            warm = measure(name, once=False)
            check(name)  # still each subscriber's logged-in page after the load
            figures[name] = {"path": page["path"], "warm": warm, "cold": cold}

        # Latency at the bar's load (see open_loop_run): the same offered rate for
        # the bare view and every page, cold (cache emptied, each subscriber once)
        # and warm (as many requests as --duration seconds at that rate).
        rate = MIN_RATIO * figures["bare"]["warm"]["rps"]
        for name, page in pages.items():
            log(f"load: {name} {page['path']}: {rate:.0f} requests/s at random instants, cold then warm")
            caches_clear()
            figures[name]["cold"]["at_bar_load"] = open_loop_run(
                port, page, subscribers, rate=rate, count=count, seed=1
            )
            figures[name]["warm"]["at_bar_load"] = open_loop_run(
                port, page, subscribers, rate=rate, count=max(count, round(rate * args.duration)), seed=2
            )
            check(name)

        overall = True
        for temperature in ("warm", "cold"):
            bare = figures["bare"][temperature]
            overall = overall and bare["clean"]
            for name, page in pages.items():
                if name == "bare":
                    continue
                entry = figures[name][temperature]
                ratios(entry, bare)
                if page.get("extra"):
                    figures[name]["extra"] = True
                    continue
                at_load = entry["at_bar_load"]
                entry["pass"] = (
                    entry["clean"]
                    and at_load["clean"]
                    and entry["ratio_to_bare"] >= MIN_RATIO
                    and at_load["p99_ms"] < MAX_P99_MS
                )
                overall = overall and entry["pass"]
        for name, page in pages.items():
            if name != "bare" and not page.get("extra"):
                figures[name]["pass"] = figures[name]["warm"]["pass"] and figures[name]["cold"]["pass"]

        totals = seeded["totals"]
        print()
        print(
            f"{os.cpu_count()} cores, gunicorn {args.workers} sync workers, wrk -t{args.threads} "
            f"-c{args.connections} (cold passes -t1), DEBUG={settings.DEBUG}, "
            f"CONN_MAX_AGE={settings.DATABASES['default']['CONN_MAX_AGE']}, session engine {settings.SESSION_ENGINE}, "
            f"caches: {caches_described()}"
        )
        print(
            f"data: {totals['subscribers']} subscribers, {totals['accounts']} accounts, {totals['bills']} bills, "
            f"{totals['bill_lines']} bill lines, {totals['consumption_rows']} consumption rows; "
            f"measured: {count} subscribers x 3 accounts, {HISTORY_MONTHS} months from {seeded['history_start']} "
            f"(seeded in {seeded['seconds']:g} s)"
        )
        table_print(
            f"\nwarm: round robin over {count} subscribers, {args.duration:g} s per URL", pages, figures, "warm"
        )
        cold_seconds = ", ".join(f"{name} {figures[name]['cold']['seconds']:g}" for name in pages)
        table_print(
            f"\ncold: Redis keys emptied, then one pass, each of {count} subscribers once (seconds: {cold_seconds})",
            pages,
            figures,
            "cold",
        )
        print(
            f"\nbar: each page >= {MIN_RATIO:.0%} of bare req/s flat out, and p99 < {MAX_P99_MS:g} ms at that load "
            f"({rate:.0f} requests/s at random instants), warm and cold "
            f"-> {'PASS' if overall else 'FAIL'}"
        )
        print("CPU columns: milliseconds of CPU per request, gunicorn processes (app) and PostgreSQL backends (db)")
        print(
            f"left of |: flat out (wrk -c{args.connections}, requests back to back: the most the server does; its "
            "p99 is the queue's length); right of |: the bar's load, requests at random instants (open_loop_run)"
        )
        if load_before > BUSY_LOAD:
            print(f"note: load average was {load_before:.1f} before the run (not a quiet machine)")

        figures.update(
            {
                "distinct_subscribers": count,
                "cores": os.cpu_count(),
                "workers": args.workers,
                "connections": args.connections,
                "duration_s": args.duration,
                "seed_s": seeded["seconds"],
                "data": totals,
                "loadavg_before": round(load_before, 2),
                "session_engine": settings.SESSION_ENGINE,
                "caches": caches_described(),
                "bar": {
                    "min_ratio_to_bare": MIN_RATIO,
                    "max_p99_ms": MAX_P99_MS,
                    "p99_at": "at_bar_load",
                    "bar_load_rps": round(rate, 1),
                    "applies_to": ["warm", "cold"],
                },
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
    except Exception as exc:  # the app failing to start, say: still a JSON line, still "could not run"
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
                caches_clear()
            except Exception as exc:
                log(f"could not remove this run's cache keys: {exc}")
        if db_created and not args.keep_db and maintenance_url:
            database_drop_at_exit(maintenance_url, args.db_name)


if __name__ == "__main__":
    sys.exit(main())
