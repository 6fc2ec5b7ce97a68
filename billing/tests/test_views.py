from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Subscriber
from billing.models import Bill, Consumption, Unit
from core.dates import format_cldr_date
from core.money import babel_locale

from .factories import BillFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_bill(subscriber: Subscriber) -> Bill:
    return BillFactory(account=ServiceAccountFactory(subscriber=subscriber))


@pytest.fixture
def bob_bill(other_subscriber: Subscriber) -> Bill:
    return BillFactory(account=ServiceAccountFactory(subscriber=other_subscriber))


def _pages(bill: Bill) -> list[str]:
    number = bill.account.number
    return [
        reverse("billing:dashboard"),
        reverse("billing:bill_list"),
        reverse("billing:bill_detail", args=[bill.number]),
        reverse("billing:consumption", args=[number]),
        reverse("billing:plan", args=[number]),
    ]


def test_every_page_sends_anonymous_visitors_to_login(client: Client, alice_bill: Bill) -> None:
    for url in _pages(alice_bill):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("accounts:login"))


def test_bob_gets_404_for_alices_bill_and_accounts(client: Client, alice_bill: Bill, other_subscriber) -> None:
    client.force_login(other_subscriber.user)
    for url in _pages(alice_bill)[2:]:
        assert client.get(url).status_code == 404, url


def test_bob_sees_nothing_of_alice_in_his_lists(client: Client, alice_bill: Bill, bob_bill: Bill) -> None:
    client.force_login(bob_bill.account.subscriber.user)
    for url in _pages(alice_bill)[:2]:
        body = client.get(url).content.decode()
        assert alice_bill.account.display_number not in body
        assert bob_bill.account.display_number in body
    # Filtering on Alice's account number is ignored, not an oracle.
    body = client.get(reverse("billing:bill_list"), {"account": alice_bill.account.number}).content.decode()
    assert alice_bill.account.display_number not in body


def test_staff_without_a_subscriber_profile_are_sent_to_the_back_office_not_500(client: Client, clerk) -> None:
    # Issue 10: "view site" from the admin lands back in the back office, not on a 404.
    client.force_login(clerk)
    response = client.get(reverse("billing:dashboard"))
    assert response.status_code == 302 and response["Location"].endswith("/admin/")


def test_dashboard_shows_amount_due_next_due_date_and_overdue_warning(
    subscriber_client: Client, subscriber: Subscriber
) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    today = timezone.localdate()
    BillFactory(
        account=account, period=dt.date(2020, 1, 1), issue_date=today - dt.timedelta(days=60),
        due_date=today - dt.timedelta(days=40), status=Bill.Status.OVERDUE,
    )  # fmt: skip
    BillFactory(
        account=account, period=dt.date(2020, 2, 1), issue_date=today - dt.timedelta(days=2),
        due_date=today + dt.timedelta(days=18),
    )  # fmt: skip

    response = subscriber_client.get("/fr/dashboard/")

    body = response.content.decode()
    [row] = response.context["accounts"]
    assert row.amount_due == Decimal("119.000")
    # The next bill to come, and the overdue one apart (issue 10).
    assert row.next_due_date == today + dt.timedelta(days=18)
    assert row.overdue_due_date == today - dt.timedelta(days=40)
    assert row.overdue_count == 1
    next_date = format_cldr_date(today + dt.timedelta(days=18), "d MMMM y", babel_locale("fr"))
    past_date = format_cldr_date(today - dt.timedelta(days=40), "d MMMM y", babel_locale("fr"))
    assert f'data-testid="next-due-date">{next_date}<' in body
    assert f'data-testid="overdue-since">{past_date}<' in body
    assert "En retard depuis" in body
    assert "119,000" in body  # French decimal comma, three TND decimals
    assert 'role="alert"' in body
    assert f"{account.number}-202002" in body  # link to the last bill


def test_bill_list_filters_by_account_status_and_year(subscriber_client: Client, subscriber: Subscriber) -> None:
    first = ServiceAccountFactory(subscriber=subscriber)
    second = ServiceAccountFactory(subscriber=subscriber)
    BillFactory(account=first, period=dt.date(2025, 3, 1))
    BillFactory(
        account=first, period=dt.date(2026, 3, 1), status=Bill.Status.PAID, amount_paid=Decimal("59.500"), amount_due=0
    )
    BillFactory(account=second, period=dt.date(2026, 3, 1))

    def numbers(**params) -> set[str]:
        page = subscriber_client.get(reverse("billing:bill_list"), params).context["page"]
        return {bill.number for bill in page}

    assert len(numbers()) == 3
    assert numbers(account=first.number) == {f"{first.number}-202503", f"{first.number}-202603"}
    assert numbers(status="paid") == {f"{first.number}-202603"}
    assert numbers(year="2025") == {f"{first.number}-202503"}
    # Nonsense filters are dropped, never a 500.
    assert (
        subscriber_client.get(reverse("billing:bill_list"), {"year": "abc", "status": "x", "page": "-3"}).status_code
        == 200
    )
    # A page far past the end (or past what a database integer holds) is the last page.
    for page in ("99", "99999999999999999999999", "1e5", "٣"):
        response = subscriber_client.get(reverse("billing:bill_list"), {"page": page})
        assert response.status_code == 200, page


def test_bill_list_paginates_twelve_bills_a_page(subscriber_client: Client, subscriber: Subscriber) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    for month in range(1, 13):
        BillFactory(account=account, period=dt.date(2024, month, 1))
        BillFactory(account=account, period=dt.date(2025, month, 1))
    first = subscriber_client.get(reverse("billing:bill_list")).context["page"]
    second = subscriber_client.get(reverse("billing:bill_list"), {"page": 2}).context["page"]
    assert len(first) == len(second) == 12
    assert first[0].period == dt.date(2025, 12, 1)  # newest first
    assert second[-1].period == dt.date(2024, 1, 1)


def test_bill_detail_shows_lines_and_amounts_in_arabic(subscriber_client: Client, alice_bill: Bill) -> None:
    alice_bill.lines.create(position=1, kind="fixed_fee", amount=Decimal("50.000"))
    response = subscriber_client.get(f"/ar/bills/{alice_bill.number}/")
    body = response.content.decode()
    assert 'dir="rtl"' in body and 'lang="ar"' in body
    assert "59,500" in body and "د.ت." in body


def test_consumption_page_draws_24_months_with_the_year_before(subscriber_client: Client, subscriber) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    Consumption.objects.bulk_create(
        Consumption(account=account, period=dt.date(2020 + m // 12, m % 12 + 1, 1), unit=Unit.KWH, quantity=100 + m)
        for m in range(36)
    )
    response = subscriber_client.get(reverse("billing:consumption", args=[account.number]))
    points = response.context["points"]
    assert len(points) == 24
    newest = points[0]
    assert newest.period == dt.date(2022, 12, 1)
    assert newest.quantity == 135 and newest.year_before == 123
    assert newest.change_percent == Decimal("9.8")
    assert response.content.decode().count('class="bar"') == 24


def test_plan_page_lists_the_plans_of_the_accounts_kind(subscriber_client: Client, subscriber) -> None:
    account = ServiceAccountFactory(subscriber=subscriber)
    other = ServiceAccountFactory(kind="water")
    same_kind = ServiceAccountFactory().plan
    response = subscriber_client.get(reverse("billing:plan", args=[account.number]))
    assert response.context["current"] == account.plan
    # The current plan has its own card; the others are the rest of its kind.
    assert account.plan not in response.context["others"]
    assert same_kind in response.context["others"]
    assert other.plan not in response.context["others"]


def test_language_switch_is_remembered_and_refuses_a_forged_post(csrf_client: Client, subscriber) -> None:
    # A post without the CSRF token is refused...
    assert csrf_client.post("/i18n/setlang/", {"language": "ar", "next": "/fr/bills/"}).status_code == 403
    # ...and with it, the switch lands on the same page in Arabic and is stored.
    csrf_client.get("/fr/dashboard/")
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post(
        "/i18n/setlang/", {"language": "ar", "next": "/fr/bills/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/ar/bills/"
    assert csrf_client.cookies["django_language"].value == "ar"
    subscriber.refresh_from_db()
    assert subscriber.preferred_language == "ar"


def test_logout_needs_a_post_with_a_csrf_token(csrf_client: Client) -> None:
    assert csrf_client.post("/fr/logout/").status_code == 403
    assert csrf_client.get("/fr/dashboard/").status_code == 200  # still logged in


def test_what_a_subscriber_typed_is_shown_escaped(subscriber_client: Client, subscriber: Subscriber) -> None:
    Subscriber.objects.filter(pk=subscriber.pk).update(full_name='<img src=x onerror="alert(1)">')
    ServiceAccountFactory(subscriber=subscriber, service_address="<script>alert(2)</script>")
    body = subscriber_client.get(reverse("billing:dashboard")).content.decode()
    assert "<img src=x" not in body and "<script>alert" not in body
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in body and "&lt;script&gt;alert(2)" in body


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_page_links_are_what_reverse_writes(language: str, subscriber) -> None:
    from django.utils import translation

    from selfcare.jinja2 import url

    with translation.override(language):
        for name, args in [
            ("billing:dashboard", ()), ("billing:bill_detail", ("1000000016-202611",)),
            ("billing:consumption", ("1000000016",)), ("notifications:channel_verify", (42,)),
            ("accounts:password_reset_confirm", ("x yé", "t")),  # needs quoting: Django's own reverse
        ]:  # fmt: skip
            assert url(name, *args) == reverse(name, args=args)


def _overdue_bill(subscriber: Subscriber) -> Bill:
    """A bill of the subscriber's, 40 days past due."""
    today = timezone.localdate()
    return BillFactory(
        account=ServiceAccountFactory(subscriber=subscriber), period=dt.date(2020, 1, 1),
        issue_date=today - dt.timedelta(days=60), due_date=today - dt.timedelta(days=40), status=Bill.Status.OVERDUE,
    )  # fmt: skip


def _alert(page: str) -> str:
    """The page's alert box (the overdue warning)."""
    return page.split('role="alert"', 1)[1].split("</div>", 1)[0]


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_overdue_warning_links_to_the_pay_page_and_the_agencies(
    subscriber_client: Client, subscriber: Subscriber, language: str
) -> None:
    """Issue 10: the warning offers something to act on, online and in person."""
    late = _overdue_bill(subscriber)
    account = late.account
    pay = f"/{language}/accounts/{account.number}/pay/"
    agencies = f"/{language}/agencies/"

    alert = _alert(subscriber_client.get(f"/{language}/dashboard/").content.decode())
    assert f'href="{pay}"' in alert
    assert f'href="{agencies}"' in alert

    alert = _alert(subscriber_client.get(f"/{language}/bills/{late.number}/").content.decode())
    assert f'href="{pay}?bill={late.number}"' in alert
    assert f'href="{agencies}"' in alert
    assert late.number in alert  # the reference to give at the counter


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_the_bill_number_to_give_at_the_counter_reads_left_to_right_in_arabic(
    subscriber_client: Client, subscriber: Subscriber, language: str
) -> None:
    """In an Arabic sentence "1000000016-202610" lay out as "202610-1000000016": the
    Arabic letters before it make both halves Arabic numbers, and the hyphen between
    them then takes the sentence's direction. The number is isolated, left to right,
    as in the page's heading, so a clerk is not given the halves swapped."""
    late = _overdue_bill(subscriber)
    page = subscriber_client.get(f"/{language}/bills/{late.number}/").content.decode()
    assert f'<bdi class="number">{late.number}</bdi>' in _alert(page)


def _bill_rows(body: str) -> list[str]:
    tbody = body.split('<table class="table bills">', 1)[1].split("</tbody>", 1)[0]
    return [row.split("</tr>", 1)[0] for row in tbody.split("<tr>")[2:]]


@pytest.mark.parametrize(("language", "service", "total_label"), [("fr", "Eau", "Total"), ("ar", "الماء", "المجموع")])
def test_bill_list_card_shows_service_total_and_paid_not_zero_due(
    subscriber_client: Client, subscriber: Subscriber, language: str, service: str, total_label: str
) -> None:
    """On a phone a paid bill read "Montant dû 0,000 DT" and only an account number."""
    account = ServiceAccountFactory(subscriber=subscriber, kind="water")
    BillFactory(
        account=account, period=dt.date(2026, 8, 1), status=Bill.Status.PAID, amount_paid="59.500", amount_due=0
    )
    BillFactory(account=account, period=dt.date(2026, 9, 1))
    with translation.override(language):  # restored after: the request leaves its language active
        body = subscriber_client.get(reverse("billing:bill_list")).content.decode()
    open_row, paid_row = _bill_rows(body)
    for row in (open_row, paid_row):
        account_cell = row.split('data-cell="account">', 1)[1].split("</td>", 1)[0]
        assert service in account_cell and account.display_number in account_cell
        total_cell = row.split('data-cell="total">', 1)[1].split("</td>", 1)[0]
        assert f'<span class="sm-label">{total_label} </span>' in total_cell and "59" in total_cell
    # The paid bill's zero amount due steps aside on a phone; its badge says paid.
    assert 'data-cell="amount-due" data-settled>' in paid_row
    assert 'data-cell="amount-due">' in open_row
    assert 'data-cell="amount-due"' in paid_row and "badge" in paid_row.split('data-cell="status">', 1)[1]
