"""Portal pages under load, against a bare Django view in the same run.

    .venv/bin/python benchmarks/portal.py [--duration 15] [--workers 3]
    scripts/with-services.sh .venv/bin/python benchmarks/portal.py

What it does, each run:

1. (Re)creates the database `selfcare_bench` on the PostgreSQL of DATABASE_URL
   (default postgres://postgres@127.0.0.1:5432/selfcare; only the name changes),
   migrates it, seeds background volume (billing.demo.demo_seed, 200 subscribers,
   36 months) and one subscriber with 3 accounts (electricity, water, mobile) and
   10 years of monthly consumption and bills, then VACUUM ANALYZE.
2. Serves the app with gunicorn (sync workers, default 3 for 2 cores), DEBUG off,
   PostgreSQL with persistent connections (CONN_MAX_AGE, 600 s unless set),
   settings benchmarks.settings (the app's settings + the bare view's URL).
3. Logs the subscriber in server-side (a session row, plus the CSRF cookie a
   browser would send) and checks that every URL answers 200 with that cookie
   and shows the subscriber's data; fails loudly otherwise.
4. Loads, one after the other, the bare view (one row by primary key, same
   middleware), the dashboard, the bills list and the consumption page with
   `wrk -t2 -c16 -d15s --latency` (after a short warm-up each).
5. Prints a table, then as its last line one JSON object with requests/s,
   p50/p99 and the ratio to the bare view for each page, and "pass" against the
   bar: each page >= 30% of the bare view's requests/s and p99 < 50 ms, with no
   error or non-2xx response. Exit status 0 on pass, 1 on fail, 2 if it could not run.

Beside requests/s it reports the CPU milliseconds per request of the gunicorn
processes and of their PostgreSQL backends, and the ratio those predict
(cpu_ratio_to_bare): steadier than requests/s when something else uses the cores
(it warns when the load average is high before the run). The queries column is
counted in-process with CaptureQueriesContext.

The pages cache their main part per subscriber (billing/fragments.py) when Redis
is configured (REDIS_URL, default redis://127.0.0.1:6379/8 here): under this load,
one subscriber reloading, every request after the first is a hit.
--dummy-cache fragments measures the miss path instead (every request renders).

--extra NAME=/path loads more URLs for comparison (not part of the bar); the
BENCH_* variables described in benchmarks/settings.py try an app change (session
engine, middleware, prepared statements, variant URLconf or templates) without
editing the app.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/selfcare"
BENCH_DB = "selfcare_bench"
MIN_RATIO = 0.30
BUSY_LOAD = 1.0  # 1-minute load average above which the machine is not quiet enough
MAX_P99_MS = 50.0

BENCH_EMAIL = "bench.subscriber@example.com"
BENCH_PHONE = "+21620999001"
HISTORY_MONTHS = 120
BACKGROUND_SUBSCRIBERS = 200
BACKGROUND_MONTHS = 36


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
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            "CELERY_BROKER_URL": "",
            "LOG_LEVEL": "WARNING",
        }
    )
    # Persistent connections, as in production (the app's default is 60 s); 600 s so
    # that no backend is replaced in the middle of a run and its CPU time lost.
    os.environ.setdefault("CONN_MAX_AGE", "600")
    os.environ["BENCH_CACHE_PREFIX"] = f"bench-portal-{secrets.token_hex(4)}"  # see benchmarks/settings.py


def seed() -> dict:
    """Background volume plus the measured subscriber; returns what the pages need."""
    import datetime as dt

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Agency, Subscriber, User
    from billing import demo
    from billing.models import Bill, Consumption, ServiceAccount, ServiceKind
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

    started = time.monotonic()
    today = timezone.localdate()
    plans = demo.plans_ensure()
    agency = Agency.objects.order_by("code").first()
    user = User.objects.create_user(
        email=BENCH_EMAIL, password=None, phone=BENCH_PHONE, first_name="Bench", last_name="Subscriber"
    )
    subscriber = Subscriber.objects.create(
        user=user, full_name="Bench Subscriber", national_id="99999001", agency=agency
    )
    kinds = [ServiceKind.ELECTRICITY, ServiceKind.WATER, ServiceKind.MOBILE]
    numbers = account_numbers_reserve(count=len(kinds))
    opened = demo.month_add(today.replace(day=1), -HISTORY_MONTHS - 1)
    accounts = []
    for i, (kind, number) in enumerate(zip(kinds, numbers, strict=True)):
        plan = next(p for p in sorted(plans.values(), key=lambda p: p.code) if p.kind == kind and p.is_active)
        accounts.append(
            ServiceAccount.objects.create(
                number=number,
                subscriber=subscriber,
                kind=kind,
                plan=plan,
                meter_number=f"B{10_000_000 + i}",
                service_address=f"{i + 1} Avenue Habib Bourguiba, {agency.city}",
                opened_on=opened,
            )
        )
    consumptions, bills, lines = demo.history_build(
        accounts=accounts,
        plans={p.pk: p for p in plans.values()},
        months=HISTORY_MONTHS,
        today=today,
        rng=random.Random(1),
    )
    demo.history_save(consumptions, bills, lines)
    bills_flag_overdue(today=today)
    own_bills = Bill.objects.filter(account__subscriber=subscriber)
    log(
        f"  subscriber: {len(accounts)} accounts, {own_bills.count()} bills, "
        f"{Consumption.objects.filter(account__subscriber=subscriber).count()} consumption rows "
        f"({HISTORY_MONTHS} months, {time.monotonic() - started:.1f} s)"
    )
    totals = {
        "bills": Bill.objects.count(),
        "consumption_rows": Consumption.objects.count(),
        "accounts": ServiceAccount.objects.count(),
        "subscribers": Subscriber.objects.count(),
    }
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics; no autovacuum during the runs

    newest = own_bills.order_by("-period", "account__number").first()
    return {
        "user": user,
        "accounts": accounts,
        "agency_pk": agency.pk,
        "newest_bill": newest.number,
        "totals": totals,
        "history_start": dt.date.isoformat(demo.month_add(today.replace(day=1), -HISTORY_MONTHS)),
        "session_cookie_name": settings.SESSION_COOKIE_NAME,
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
            if keys:
                client.delete(*keys)


def caches_described() -> str:
    from django.conf import settings

    return ", ".join(f"{alias} {conf['BACKEND'].rsplit('.', 1)[-1]}" for alias, conf in settings.CACHES.items())


def csrf_cookie_value() -> str:
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.utils.crypto import get_random_string

    return get_random_string(CSRF_SECRET_LENGTH, allowed_chars=CSRF_ALLOWED_CHARS)


def queries_per_page(pages: dict[str, dict], cookie_name: str, session_key: str) -> dict[str, int]:
    """Queries each page runs, counted in-process (informational)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[cookie_name] = session_key
    counts = {}
    for name, page in pages.items():
        client.get(page["path"])  # first hit: imports, translations, template compilation
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page["path"])
        if response.status_code != 200:
            raise BenchError(f"{page['path']} answered {response.status_code} in-process")
        counts[name] = len(captured)
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


def verify(port: int, name: str, page: dict, cookie: str) -> None:
    """200 with the cookie, and the subscriber's own data on the page; loudly otherwise."""
    status, headers, body = http_get(port, page["path"], cookie)
    if status != 200:
        where = f" to {headers['location']}" if "location" in headers else ""
        hint = " (is the session cookie accepted?)" if status in {301, 302, 403} else ""
        raise BenchError(f"{name} {page['path']} answered {status}{where}, not 200{hint}")
    missing = [text for text in page.get("expect", []) if text not in body]
    if missing:
        raise BenchError(f"{name} {page['path']} answered 200 without {missing!r}: not the subscriber's page?")


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


def cpu_per_request(before: dict | None, after: dict | None, requests: int) -> dict[str, float] | None:
    if not before or not after or not requests:
        return None
    spent = {
        group: sum(cpu - before[group].get(pid, 0.0) for pid, cpu in after[group].items()) for group in ("app", "db")
    }
    return {f"{group}_cpu_ms": round(seconds * 1000 / requests, 3) for group, seconds in spent.items()}


# --- load -------------------------------------------------------------------

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
    total = find(r"^\s+(\d+) requests in")
    if not (rps and p50 and p99 and total):
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    non_2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    return {
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": round(to_ms(p50.group(1)), 2),
        "p99_ms": round(to_ms(p99.group(1)), 2),
        "requests": int(total.group(1)),
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "timeouts": int(errors.group(4)) if errors else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def wrk_run(wrk: str, url: str, cookie: str, *, threads: int, connections: int, duration: float) -> dict:
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
        "--timeout", "10s", "-H", f"Cookie: {cookie}", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return wrk_parse(result.stdout)


# --- main -------------------------------------------------------------------


def cpu_cell(entry: dict, key: str) -> str:
    return f"{entry[key]:.2f}" if key in entry else "-"


def main(argv: list[str] | None = None) -> int:
    # Production serves with Redis (shared cache for sessions and page parts);
    # so does the benchmark, on a database of its own when none is given.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per URL (default 15)")
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
        help="serve with cache ALIAS replaced by DummyCache, e.g. fragments: the pages' cache-miss path (repeatable)",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also load PATH (with the same cookie) and report it; not part of the bar (repeatable)",
    )
    args = parser.parse_args(argv)

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
        log(f"database: {args.db_name} (re)created; seeding")
        database_recreate(maintenance_url, args.db_name)
        db_created = True

        import django

        django.setup()
        from django.conf import settings
        from django.db import connections

        seeded = seed()
        session_key = session_create(seeded["user"])
        cookie_name = seeded["session_cookie_name"]
        # What a browser that has seen a page sends: the session and the CSRF cookie
        # (without the latter, every response would set a fresh one).
        cookie = f"{cookie_name}={session_key}; {settings.CSRF_COOKIE_NAME}={csrf_cookie_value()}"
        consumption_account = seeded["accounts"][0]
        pages = {
            "bare": {"path": f"/bare/{seeded['agency_pk']}/"},
            "dashboard": {
                "path": "/fr/dashboard/",
                "expect": ["Bench Subscriber", *(a.display_number for a in seeded["accounts"])],
            },
            "bills": {"path": "/fr/bills/", "expect": [seeded["newest_bill"]]},
            "consumption": {
                "path": f"/fr/accounts/{consumption_account.number}/consumption/",
                "expect": [consumption_account.display_number, "consumption-chart"],
            },
        }
        for extra in args.extra:
            name, sep, path = extra.partition("=")
            if not sep or not path.startswith("/") or name in pages:
                raise BenchError(f"--extra wants NAME=/path with a new name, not {extra!r}")
            pages[name] = {"path": path, "extra": True}
        queries = queries_per_page(pages, cookie_name, session_key)
        connections.close_all()

        port = free_port()
        gunicorn_log = workdir / "gunicorn.log"
        log(
            f"serving: gunicorn, {args.workers} sync workers, 127.0.0.1:{port}, CONN_MAX_AGE={os.environ['CONN_MAX_AGE']}"
        )
        process = gunicorn_start(port, args.workers, gunicorn_log)
        wait_until_serving(process, port, pages["bare"]["path"], gunicorn_log)
        try:
            for name, page in pages.items():
                verify(port, name, page, cookie)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{tail(gunicorn_log)}") from None

        results = {}
        for name, page in pages.items():
            url = f"http://127.0.0.1:{port}{page['path']}"
            if args.warmup > 0:
                wrk_run(wrk, url, cookie, threads=args.threads, connections=args.connections, duration=args.warmup)
            log(f"load: {name} {page['path']} for {args.duration:g} s, {args.connections} clients")
            before = cpu_snapshot(process.pid, maintenance_url, args.db_name)
            results[name] = wrk_run(
                wrk, url, cookie, threads=args.threads, connections=args.connections, duration=args.duration
            )
            cpu = cpu_per_request(
                before, cpu_snapshot(process.pid, maintenance_url, args.db_name), results[name]["requests"]
            )
            if cpu:
                results[name].update(cpu)
            verify(port, name, page, cookie)  # still the logged-in page after the load
            if process.poll() is not None:
                raise BenchError(f"gunicorn died during the {name} run:\n{tail(gunicorn_log)}")

        bare = results["bare"]
        overall = True
        rows = []
        for name, result in results.items():
            entry = {**result, "path": pages[name]["path"], "queries": queries[name]}
            clean = result["errors"] == 0 and result["non_2xx"] == 0
            if name != "bare" and "app_cpu_ms" in result and "app_cpu_ms" in bare:
                # What the ratio would be if CPU were the only limit: steadier than req/s on a busy machine.
                page_cpu = result["app_cpu_ms"] + result["db_cpu_ms"]
                entry["cpu_ratio_to_bare"] = (
                    round((bare["app_cpu_ms"] + bare["db_cpu_ms"]) / page_cpu, 3) if page_cpu else 0.0
                )
            if pages[name].get("extra"):
                entry["ratio_to_bare"] = round(result["rps"] / bare["rps"], 3) if bare["rps"] else 0.0
                entry["extra"] = True
            elif name != "bare":
                entry["ratio_to_bare"] = round(result["rps"] / bare["rps"], 3) if bare["rps"] else 0.0
                entry["pass"] = clean and entry["ratio_to_bare"] >= MIN_RATIO and result["p99_ms"] < MAX_P99_MS
                overall = overall and entry["pass"]
            else:
                overall = overall and clean
            figures[name] = entry
            rows.append((name, entry))

        print()
        print(
            f"{os.cpu_count()} cores, gunicorn {args.workers} sync workers, wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration:g}s, DEBUG={settings.DEBUG}, "
            f"CONN_MAX_AGE={settings.DATABASES['default']['CONN_MAX_AGE']}, session engine {settings.SESSION_ENGINE}, "
            f"caches: {caches_described()}"
        )
        print(
            f"data: {seeded['totals']['subscribers']} subscribers, {seeded['totals']['accounts']} accounts, "
            f"{seeded['totals']['bills']} bills, {seeded['totals']['consumption_rows']} consumption rows; "
            f"measured subscriber: 3 accounts, {HISTORY_MONTHS} months from {seeded['history_start']}"
        )
        width = max(12, *(len(name) for name in results))
        header = (
            f"{'page':<{width}} {'path':<38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} "
            f"{'app CPU':>8} {'db CPU':>7} {'queries':>7} {'errors':>6}  result"
        )
        print(header)
        print("-" * len(header))
        for name, entry in rows:
            ratio = f"{entry['ratio_to_bare']:.2f}" if "ratio_to_bare" in entry else "1.00"
            verdict = (
                "baseline"
                if name == "bare"
                else ("(extra)" if entry.get("extra") else ("pass" if entry["pass"] else "FAIL"))
            )
            print(
                f"{name:<{width}} {entry['path']:<38} {entry['rps']:>9.1f} {entry['p50_ms']:>8.2f} {entry['p99_ms']:>8.2f} "
                f"{ratio:>6} {cpu_cell(entry, 'app_cpu_ms'):>8} {cpu_cell(entry, 'db_cpu_ms'):>7} "
                f"{entry['queries']:>7} {entry['errors'] + entry['non_2xx']:>6}  {verdict}"
            )
        print(
            f"bar: each page >= {MIN_RATIO:.0%} of bare req/s and p99 < {MAX_P99_MS:g} ms -> {'PASS' if overall else 'FAIL'}"
        )
        print("CPU columns: milliseconds of CPU per request, gunicorn processes (app) and PostgreSQL backends (db)")
        if load_before > BUSY_LOAD:
            print(f"note: load average was {load_before:.1f} before the run (not a quiet machine)")

        figures.update(
            {
                "cores": os.cpu_count(),
                "workers": args.workers,
                "connections": args.connections,
                "duration_s": args.duration,
                "loadavg_before": round(load_before, 2),
                "session_engine": settings.SESSION_ENGINE,
                "caches": caches_described(),
                "bar": {"min_ratio_to_bare": MIN_RATIO, "max_p99_ms": MAX_P99_MS},
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
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: S110
                pass
            try:
                database_drop(maintenance_url, args.db_name)
            except Exception as exc:
                log(f"could not drop {args.db_name}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
