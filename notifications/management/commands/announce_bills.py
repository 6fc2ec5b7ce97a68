from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Bill
from notifications.services import bills_announce


class Command(BaseCommand):
    help = "Send the bill-issued messages for the bills of a period. Running it again sends nothing twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="YYYY-MM")

    def handle(self, *args, period: str, **options) -> None:
        try:
            month = dt.datetime.strptime(period, "%Y-%m").date()
        except ValueError:
            raise CommandError("--period takes a month as YYYY-MM, e.g. 2026-10.") from None
        bills = (
            Bill.objects.filter(period=month)
            .exclude(status=Bill.Status.CANCELLED)
            .select_related("account__subscriber")
            .prefetch_related("account__subscriber__channels")
            .iterator(chunk_size=500)
        )
        created = bills_announce(bills=bills)
        self.stdout.write(f"{created} bill messages queued for {period}.")
