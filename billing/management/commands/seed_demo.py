from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser

from billing.demo import DEMO_PASSWORD, demo_seed
from core.audit import audit_system


class Command(BaseCommand):
    help = "Seed demo agencies, plans, subscribers, consumption and bills (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscribers", type=int, default=500)
        parser.add_argument("--months", type=int, default=36)

    def handle(self, *args, subscribers: int, months: int, **options) -> None:
        started = time.monotonic()
        with audit_system("seed_demo"):
            report = demo_seed(subscribers=subscribers, months=months)
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
