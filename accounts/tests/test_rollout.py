"""The back office's paperless roll-out figures, checked on a dataset small enough to count by hand."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Agency, ChannelKind, ContactChannel, Subscriber
from accounts.selectors import agencies_with_rollout, agency_rollout_report
from billing.models import PrintRequest
from billing.tests.factories import BillFactory, ServiceAccountFactory

from .factories import AgencyFactory, SubscriberFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)
TUNIS = ZoneInfo("Africa/Tunis")


def _channel(subscriber: Subscriber, *, verified: bool, address: str | None = None) -> None:
    ContactChannel.objects.create(
        subscriber=subscriber,
        kind=ChannelKind.SMS if address is None else ChannelKind.EMAIL,
        address=address or subscriber.user.phone,
        language="fr",
        verified_at=timezone.now() if verified else None,
    )


def _copy(subscriber: Subscriber, when: dt.datetime) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    request = PrintRequest.objects.create(bill=bill, agency=subscriber.agency, requested_by=subscriber.user)
    PrintRequest.objects.filter(pk=request.pk).update(requested_at=when, status=PrintRequest.Status.PRINTED)


@pytest.fixture
def dataset() -> dict[str, Agency]:
    # Sfax stopped paper ten days ago: 4 subscribers, 2 with a verified channel.
    sfax = AgencyFactory(code="SFX", paperless_from=TODAY - dt.timedelta(days=10))
    a1, a2, a3, _a4 = (SubscriberFactory(agency=sfax) for _ in range(4))
    _channel(a1, verified=True)
    _channel(a2, verified=True)
    _channel(a2, verified=False, address="a2@example.com")  # two channels, still one subscriber
    _channel(a3, verified=False)
    # Tunis never stopped paper: 3 subscribers, 2 verified, 1 of whom chose e-bills;
    # the third chose them once, but her channel is no longer verified.
    tunis = AgencyFactory(code="TUN")
    b1, b2, b3 = (SubscriberFactory(agency=tunis) for _ in range(3))
    b1.paperless = True
    b1.save()
    _channel(b1, verified=True)
    _channel(b2, verified=True)
    Subscriber.objects.filter(pk=b3.pk).update(paperless=True)
    _channel(b3, verified=False)
    # Nouakchott has nobody yet.
    empty = AgencyFactory(code="NKC")

    # Paper copies, in the operator's time (Tunis, UTC+1).
    _copy(a1, dt.datetime(2026, 6, 3, 10, tzinfo=TUNIS))
    _copy(a2, dt.datetime(2026, 6, 14, 16, tzinfo=TUNIS))
    _copy(a1, dt.datetime(2025, 7, 1, 0, 30, tzinfo=TUNIS))  # first day of the window
    _copy(a2, dt.datetime(2025, 6, 30, 23, 30, tzinfo=TUNIS))  # the day before: left out
    # 1 June 00:30 in Tunis is still 31 May in UTC: it counts for June.
    _copy(b1, dt.datetime(2026, 6, 1, 0, 30, tzinfo=TUNIS))
    _copy(b2, dt.datetime(2026, 4, 20, 9, tzinfo=TUNIS))
    return {"sfax": sfax, "tunis": tunis, "empty": empty}


def test_the_shares_per_agency(dataset) -> None:
    rows = {a.code: a for a in agencies_with_rollout(queryset=Agency.objects.all(), today=TODAY)}
    assert (rows["SFX"].subscriber_count, rows["SFX"].verified_count, rows["SFX"].paperless_count) == (4, 2, 2)
    assert (rows["TUN"].subscriber_count, rows["TUN"].verified_count, rows["TUN"].paperless_count) == (3, 2, 1)
    assert (rows["NKC"].subscriber_count, rows["NKC"].verified_count, rows["NKC"].paperless_count) == (0, 0, 0)


def test_before_its_date_the_roll_out_counts_nobody(dataset) -> None:
    before = TODAY - dt.timedelta(days=11)
    sfax = agencies_with_rollout(queryset=Agency.objects.filter(code="SFX"), today=before).get()
    assert sfax.paperless_count == 0


def test_paper_copies_per_month_over_the_last_twelve_in_operator_time(dataset) -> None:
    months, rows = agency_rollout_report(queryset=Agency.objects.order_by("code"), today=TODAY)
    assert months[0] == dt.date(2025, 7, 1) and months[-1] == dt.date(2026, 6, 1) and len(months) == 12
    by_code = {row.agency.code: row for row in rows}
    sfax = dict(zip(months, by_code["SFX"].paper_copies, strict=True))
    assert sfax[dt.date(2026, 6, 1)] == 2
    assert sfax[dt.date(2025, 7, 1)] == 1
    assert sum(by_code["SFX"].paper_copies) == 3  # June 2025 is out of the window
    tunis = dict(zip(months, by_code["TUN"].paper_copies, strict=True))
    assert tunis[dt.date(2026, 6, 1)] == 1 and tunis[dt.date(2026, 5, 1)] == 0 and tunis[dt.date(2026, 4, 1)] == 1
    assert by_code["NKC"].paper_copies == (0,) * 12
    assert by_code["SFX"].verified_share == 0.5 and by_code["NKC"].paperless_share is None


def test_the_report_is_two_statements_whatever_the_number_of_agencies(dataset, django_assert_num_queries) -> None:
    for _ in range(10):
        SubscriberFactory(agency=AgencyFactory())
    with django_assert_num_queries(2):
        agency_rollout_report(queryset=Agency.objects.all(), today=TODAY)


@pytest.fixture
def at_today(monkeypatch) -> None:
    instant = dt.datetime.combine(TODAY, dt.time(12), tzinfo=TUNIS)
    monkeypatch.setattr(timezone, "now", lambda: instant)


def test_the_agency_changelist_shows_the_shares(client: Client, superuser, dataset, at_today) -> None:
    client.force_login(superuser)
    html = client.get("/en/admin/accounts/agency/").content.decode()
    sfax = re.search(r"<tr>.*?SFX.*?</tr>", html, re.S).group(0)
    assert "2 (50%)" in sfax
    tunis = re.search(r"<tr>.*?TUN.*?</tr>", html, re.S).group(0)
    assert "2 (67%)" in tunis and "1 (33%)" in tunis
    assert 'href="/en/admin/accounts/agency/rollout/"' in html


def test_the_changelist_is_one_query_for_any_number_of_agencies(
    client: Client, superuser, dataset, django_assert_max_num_queries
) -> None:
    client.force_login(superuser)
    url = reverse("admin:accounts_agency_changelist")
    client.get(url)
    with django_assert_max_num_queries(8) as few:
        client.get(url)
    for _ in range(10):
        SubscriberFactory(agency=AgencyFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_the_roll_out_page_lists_every_agency_and_its_paper_copies(
    client: Client, superuser, dataset, at_today
) -> None:
    client.force_login(superuser)
    response = client.get("/fr/admin/accounts/agency/rollout/")
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(r'<tr id="agency-SFX">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
    # agency, roll-out date, subscribers, verified, paperless, 12 months, total
    assert cells[2:5] == ["4", "2 (50 %)", "2 (50 %)"]  # French spacing, in the staff member's language
    assert cells[5:17] == ["1"] + ["0"] * 10 + ["2"]
    assert cells[17] == "3"


def test_the_agency_change_page_links_to_its_roll_out(client: Client, superuser, dataset) -> None:
    client.force_login(superuser)
    html = client.get(reverse("admin:accounts_agency_change", args=[dataset["sfax"].pk])).content.decode()
    assert "/admin/accounts/agency/rollout/#agency-SFX" in html


def test_staff_who_may_not_view_agencies_get_no_roll_out(client: Client, dataset) -> None:
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(staff)
    assert client.get(reverse("admin:accounts_agency_rollout")).status_code == 403


def test_a_clerk_sees_the_roll_out_of_her_own_agencies_only(client: Client, clerk, subscriber, dataset) -> None:
    client.force_login(clerk)
    response = client.get(reverse("admin:accounts_agency_rollout"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="agency-{subscriber.agency.code}"' in html
    assert 'id="agency-SFX"' not in html and 'id="agency-TUN"' not in html
