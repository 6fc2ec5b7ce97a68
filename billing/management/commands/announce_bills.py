from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.messages import bills_announce
from billing.models import Bill
from billing.services import bills_with_channels


class Command(BaseCommand):
    help = "Send the bill-issued messages for the bills of a period. Running it again sends nothing twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="YYYY-MM")

    def handle(self, *args, period: str, **options) -> None:
        try:
            month = dt.datetime.strptime(period, "%Y-%m").date()
        except ValueError:
            raise CommandError("--period takes a month as YYYY-MM, e.g. 2026-10.") from None
        bills = bills_with_channels(Bill.objects.filter(period=month).exclude(status=Bill.Status.CANCELLED))
        created = bills_announce(bills=bills.iterator(chunk_size=500))
        self.stdout.write(f"{created} bill messages queued for {period}.")
