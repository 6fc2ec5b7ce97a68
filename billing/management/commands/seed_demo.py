from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser
from django.db import IntegrityError, OperationalError

from billing.demo import DEMO_PASSWORD, DEMO_SUBSCRIBER_PHONE, DemoSeedBusy, demo_login_phone_verify, demo_seed
from core.audit import audit_system


class Command(BaseCommand):
    help = "Seed demo agencies, plans, subscribers, consumption and bills (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscribers", type=int, default=500)
        parser.add_argument("--months", type=int, default=36)

    def handle(self, *args, subscribers: int, months: int, **options) -> None:
        started = time.monotonic()
        try:
            with audit_system("seed_demo"):
                report = demo_seed(subscribers=subscribers, months=months)
                demo_login_phone_verify()
        except (DemoSeedBusy, IntegrityError, OperationalError) as exc:
            # PostgreSQL says so through the advisory lock; SQLite (the demo) by a
            # locked database or a duplicate row. Either way the other run wins.
            if isinstance(exc, OperationalError) and "locked" not in str(exc):
                raise
            self.stdout.write("The demo is already being seeded by another process: nothing added here.")
            return
        if report.created:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {report.agencies} agencies, {report.subscribers} subscribers, "
                    f"{report.accounts} accounts, {report.bills} bills and {report.consumption_rows} "
                    f"consumption rows in {time.monotonic() - started:.1f} s."
                )
            )
        else:
            self.stdout.write("Demo data already present: nothing added.")
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD}):")
        for login, role in report.logins:
            self.stdout.write(f"  {login:<40} {role}")
        self.stdout.write(
            f"The subscriber's {DEMO_SUBSCRIBER_PHONE} is a verified SMS channel: a forgotten-password code "
            "(Forgot your password? > by SMS) and every SMS alert print in this terminal."
        )
