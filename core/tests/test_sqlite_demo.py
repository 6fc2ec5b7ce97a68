"""The embedded default that `make run` serves (SQLite, tasks run in-process)
works end to end: the rest of the suite runs on PostgreSQL, so this one test
runs the demo's own engine in a child process, with the demo's environment."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run inside `manage.py shell`: log the demo subscriber in, walk the pages, make a
# payment-like bulk write and a message go through the relay, all on SQLite.
SCRIPT = r"""
import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import Bill
from billing.services import bills_flag_overdue
from notifications.models import Message
from notifications.verification import channel_add

assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), settings.DATABASES
assert settings.CELERY_TASK_ALWAYS_EAGER

user = User.objects.get(email="subscriber@example.com")
subscriber = user.subscriber
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(user)
account = subscriber.accounts.order_by("number").first()
bill = Bill.objects.filter(account=account).order_by("-period").first()
for language in ("ar", "fr", "en"):
    for url in (
        reverse("billing:dashboard"), reverse("billing:bill_list"), reverse("billing:bill_list") + "?status=overdue",
        reverse("billing:bill_detail", args=[bill.number]), reverse("billing:consumption", args=[account.number]),
        reverse("billing:plan", args=[account.number]), reverse("notifications:messages"),
        reverse("notifications:channels"), reverse("accounts:agency_list"),
    ):
        url = url.replace("/fr/", f"/{language}/", 1)
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
# The bill's PDF (WeasyPrint, the shipped fonts), in Arabic.
response = client.get(reverse("billing:bill_pdf", args=[bill.number]).replace("/fr/", "/ar/", 1))
assert response.status_code == 200 and response.content.startswith(b"%PDF-"), response.status_code
print("pages ok")

# Money comparisons on SQLite's float-stored decimals: pay a bill to the last
# millime in bulk, and the database's own rules (due = total - paid, paid has
# nothing due) hold; the overdue sweep then leaves it alone.
open_bill = Bill.objects.filter(account__subscriber=subscriber, amount_due__gt=0).order_by("period").first()
Bill.objects.filter(pk=open_bill.pk).update(amount_paid=open_bill.amount_total, amount_due=Decimal(0), status="paid")
assert not Bill.objects.filter(Bill.overdue_q(dt.date.today()), pk=open_bill.pk).exists()
bills_flag_overdue()
assert Bill.objects.get(pk=open_bill.pk).status == "paid"
print("money ok")

# A code goes out through the outbox and the relay, in-process.
channel = channel_add(subscriber=subscriber, kind="sms", address="+21620999777")
message = Message.objects.get(channel=channel)
assert message.status == "sent", (message.status, message.last_error)
print("relay ok")
"""


def test_the_demo_works_on_sqlite_with_in_process_tasks(tmp_path: Path) -> None:
    unset = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        {
            "DEBUG": "1",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            "LANGUAGE_CODE": "fr",  # the demo's; commands speak it unless told otherwise
            # Quiet hours would hold the code back at night; codes are urgent anyway.
            "SELFCARE_QUIET_START": "00:00",
            "SELFCARE_QUIET_END": "00:01",
        }
    )

    def manage(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    manage("migrate", "--noinput", "-v0")
    seeded = manage("seed_demo", "--subscribers", "12", "--months", "14")
    assert "subscriber@example.com" in seeded
    assert "nothing added" in manage("seed_demo", "--subscribers", "12", "--months", "14")
    out = manage("shell", stdin=SCRIPT)
    assert "pages ok" in out and "money ok" in out and "relay ok" in out
    # A bill run on SQLite takes the portable path (bill_issue per account): this
    # month has no readings yet, so meters are estimated and telecom bills its fee.
    month = dt.date.today().strftime("%Y-%m")
    ran = manage("bill_run", "--period", month, "--chunk-size", "5", "--language", "en")
    assert "100%" in ran and "Finished:" in ran and " 0 failed" in ran, ran
    assert not re.search(r"\b0 estimated", ran) and not re.search(r"Finished: 0 billed", ran), ran
    # in the deployment's language (LANGUAGE_CODE, French here) without --language
    assert "0 facturés sur relevé, 0 estimés" in manage("bill_run", "--period", month), "billed twice"
