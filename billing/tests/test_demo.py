from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Subscriber, User
from billing.demo import DEMO_PASSWORD, DEMO_SUBSCRIBER_EMAIL, demo_seed
from billing.models import Bill, ServiceAccount
from billing.selectors import account_list_for_dashboard

pytestmark = pytest.mark.django_db


def test_seeding_twice_adds_nothing_the_second_time(capsys) -> None:
    call_command("seed_demo", subscribers=20, months=13)
    counts = (User.objects.count(), ServiceAccount.objects.count(), Bill.objects.count())
    call_command("seed_demo", subscribers=20, months=13)
    assert (User.objects.count(), ServiceAccount.objects.count(), Bill.objects.count()) == counts
    out = capsys.readouterr().out
    assert "already present" in out and "subscriber@example.com" in out and "clerk@example.com" in out


def test_the_demo_subscriber_has_several_accounts_and_exactly_one_overdue_bill() -> None:
    demo_seed(subscribers=10, months=36)
    user = User.objects.get(email=DEMO_SUBSCRIBER_EMAIL)
    assert user.phone == "+21620000001"
    rows = list(account_list_for_dashboard(subscriber_id=user.subscriber.pk, today=timezone.localdate()))
    assert len(rows) >= 3
    assert sum(row.overdue_count for row in rows) == 1
    assert Bill.objects.filter(account__subscriber=user.subscriber).count() == 36 * len(rows)


def test_the_demo_logins_work() -> None:
    demo_seed(subscribers=3, months=2)
    response = Client().post("/fr/login/", {"username": "+21620000001", "password": DEMO_PASSWORD})
    assert response["Location"] == "/fr/dashboard/"
    for staff in ("clerk@example.com", "admin@example.com"):
        c = Client()
        assert c.post("/fr/admin/login/", {"username": staff, "password": DEMO_PASSWORD}).status_code == 302
        assert c.get("/fr/admin/billing/bill/").status_code == 200, staff


def test_the_seed_mixes_paid_partially_paid_and_overdue_bills() -> None:
    demo_seed(subscribers=60, months=36)
    statuses = set(Bill.objects.values_list("status", flat=True))
    assert {Bill.Status.PAID, Bill.Status.PARTIALLY_PAID, Bill.Status.OVERDUE, Bill.Status.ISSUED} <= statuses
    assert ServiceAccount.objects.values("kind").distinct().count() >= 4


def test_the_demo_agencies_have_hours_phones_a_reduction_and_a_paperless_roll_out() -> None:
    from accounts.models import Agency
    from accounts.selectors import agency_rollout_report
    from billing.models import PrintRequest

    demo_seed(subscribers=60, months=13)
    html = Client().get("/fr/agencies/").content.decode()
    assert html.count('class="card agency"') == 3
    assert 'href="tel:+21671123456"' in html and 'href="geo:36.8008,10.1806?q=' in html
    assert "Horaires réduits du" in html and "Travaux de rénovation" in html  # Tunis Centre, this week
    assert "Plus de factures papier depuis le" in html  # Sfax Nord
    _months, rows = agency_rollout_report(queryset=Agency.objects.all(), today=timezone.localdate())
    sfax = next(row for row in rows if row.agency.code == "SFX-N")
    assert 0 < sfax.verified < sfax.subscribers and sfax.paperless == sfax.verified  # rolled out
    assert sum(sum(row.paper_copies) for row in rows) == PrintRequest.objects.count() > 0
    # The demo subscriber has no channel: the browser test verifies her first one itself.
    assert not User.objects.get(email=DEMO_SUBSCRIBER_EMAIL).subscriber.channels.exists()


def test_the_demo_subscriber_is_greeted_in_arabic_script_on_the_arabic_dashboard() -> None:
    demo_seed(subscribers=4, months=2)
    client = Client()
    client.force_login(User.objects.get(email=DEMO_SUBSCRIBER_EMAIL))
    arabic = client.get("/ar/dashboard/").content.decode()
    french = client.get("/fr/dashboard/").content.decode()
    assert "محمد بن سالم" in arabic and "Mohamed Ben Salem" not in arabic
    assert "Mohamed Ben Salem" in french and "محمد بن سالم" not in french


def test_the_demo_has_names_and_addresses_in_arabic_as_well_as_french() -> None:
    demo_seed(subscribers=12, months=2)
    arabic_script = re.compile("[\u0600-\u06ff]")
    names = [s.name_in("ar") for s in Subscriber.objects.all()]
    assert all(arabic_script.search(name) for name in names), names  # every subscriber, in Arabic on Arabic pages
    addresses = list(ServiceAccount.objects.values_list("service_address", flat=True))
    assert any(arabic_script.search(a) for a in addresses) and any(not arabic_script.search(a) for a in addresses)
    demo = Subscriber.objects.get(user__email=DEMO_SUBSCRIBER_EMAIL)
    demo_addresses = [a.service_address for a in demo.accounts.order_by("pk")]
    assert {bool(arabic_script.search(a)) for a in demo_addresses} == {True, False}, demo_addresses


def test_make_runs_demo_subscriber_can_reset_her_password_by_sms(capsys) -> None:
    """`make run` seeds with this command: her login phone is a verified SMS channel,
    so "Forgot your password? > by SMS" sends a code (printed by the console provider)."""
    from notifications.models import Message
    from notifications.passwords import PASSWORD_RESET_CODE

    call_command("seed_demo", subscribers=3, months=2)
    call_command("seed_demo", subscribers=3, months=2)  # idempotent: one channel
    assert "+21620000001 is a verified SMS channel" in capsys.readouterr().out
    user = User.objects.get(email=DEMO_SUBSCRIBER_EMAIL)
    assert list(user.subscriber.channels.values_list("kind", "address")) == [("sms", "+21620000001")]
    response = Client().post("/fr/password-reset/sms/", {"phone": "20 000 001"})
    assert response.status_code == 302
    assert Message.objects.filter(event=PASSWORD_RESET_CODE.name, address="+21620000001").count() == 1
