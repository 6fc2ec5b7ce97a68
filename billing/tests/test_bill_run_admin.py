"""Bill runs in the back office: who may start one for what, and the page that
follows it without a script."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import AgencyFactory
from billing.models import Bill, BillRun, ServiceAccount
from core.dates import month_add

from .factories import ConsumptionFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db

PERIOD = month_add(timezone.localdate(), -1)
ADD = reverse("admin:billing_billrun_add")


def meter(subscriber) -> ServiceAccount:
    account = ServiceAccountFactory(subscriber=subscriber, opened_on=dt.date(2020, 1, 1))
    ConsumptionFactory(account=account, period=PERIOD, quantity=Decimal(90))
    return account


@pytest.fixture
def two_agencies(subscriber, other_subscriber) -> tuple[ServiceAccount, ServiceAccount]:
    return meter(subscriber), meter(other_subscriber)


def test_a_superuser_bills_every_agency_and_lands_on_the_runs_page(
    client: Client, superuser, two_agencies, django_capture_on_commit_callbacks
) -> None:
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD, {"period": f"{PERIOD:%Y-%m}", "issue_date": ""})
    run = BillRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:billing_billrun_change", args=[run.pk]
    )
    run.refresh_from_db()
    assert (run.status, run.agency, run.billed, run.created_by) == (BillRun.Status.FINISHED, None, 2, superuser)
    assert Bill.objects.filter(period=PERIOD).count() == 2

    page = client.get(response["Location"]).content.decode()
    assert '<progress value="100" max="100"' in page
    assert 'http-equiv="refresh"' not in page  # over: nothing to follow


def test_a_supervisor_bills_their_agency_only(
    client: Client, supervisor, subscriber, two_agencies, django_capture_on_commit_callbacks
) -> None:
    client.force_login(supervisor)
    form = client.get(ADD)
    assert form.status_code == 200
    offered = set(form.context["adminform"].form.fields["agency"].queryset.values_list("pk", flat=True))
    assert offered == {subscriber.agency_id}

    # Every agency is refused, another agency is not among the choices.
    response = client.post(ADD, {"period": f"{PERIOD:%Y-%m}"})
    assert response.status_code == 200 and "agency" in response.context["adminform"].form.errors
    other = AgencyFactory()
    response = client.post(ADD, {"period": f"{PERIOD:%Y-%m}", "agency": other.pk})
    assert response.status_code == 200 and "agency" in response.context["adminform"].form.errors
    assert not BillRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD, {"period": f"{PERIOD:%Y-%m}", "agency": subscriber.agency_id})
    assert response.status_code == 302
    run = BillRun.objects.get()
    run.refresh_from_db()
    assert (run.agency_id, run.billed, run.accounts_in_scope) == (subscriber.agency_id, 1, 1)
    assert list(Bill.objects.values_list("account__subscriber", flat=True)) == [subscriber.pk]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"period": "2026-13"}, "period"),
        ({"period": "novembre"}, "period"),
        ({"period": "2999-01"}, "period"),
        ({"period": "2026-01", "billing_cycle": "40"}, "billing_cycle"),
        ({"period": "2026-01", "issue_date": "demain"}, "issue_date"),
    ],
)
def test_the_start_page_refuses_bad_input_with_a_message(client: Client, superuser, data: dict, field: str) -> None:
    client.force_login(superuser)
    response = client.post(ADD, data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not BillRun.objects.exists()


def test_a_clerk_cannot_start_a_run(client: Client, clerk) -> None:
    client.force_login(clerk)
    assert client.get(ADD).status_code == 403


def test_a_running_runs_page_refreshes_itself_without_a_script(client: Client, superuser, two_agencies) -> None:
    from billing.runs import bill_run_start

    client.force_login(superuser)
    run = bill_run_start(period=PERIOD)  # planned, not billed yet
    page = client.get(reverse("admin:billing_billrun_change", args=[run.pk])).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in page
    assert '<progress value="0" max="100"' in page
    # The strict CSP allows no inline script: every script on the page has a source.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_resuming_a_failed_run_bills_what_it_missed(
    client: Client, superuser, two_agencies, django_capture_on_commit_callbacks
) -> None:
    from billing.models import BillRunChunk
    from billing.runs import bill_run_start

    run = bill_run_start(period=PERIOD, chunk_size=1)
    BillRunChunk.objects.filter(run=run).update(status=BillRunChunk.Status.FAILED, error="lost connection")
    BillRun.objects.filter(pk=run.pk).update(status=BillRun.Status.FAILED, finished_at=timezone.now())
    client.force_login(superuser)
    page = client.get(reverse("admin:billing_billrun_change", args=[run.pk])).content.decode()
    assert "lost connection" in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:billing_billrun_changelist"), {"action": "resume", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert (run.status, run.billed, run.failed) == (BillRun.Status.FINISHED, 2, 0)


def test_a_finished_runs_page_and_list_read_well_in_french(client: Client, superuser, two_agencies) -> None:
    from billing.runs import bill_run_start

    # A re-run that found every account billed: its only non-zero count is "already billed".
    run = bill_run_start(period=dt.date(2026, 11, 1), chunk_size=1000)
    BillRun.objects.filter(pk=run.pk).update(
        status=BillRun.Status.FINISHED, finished_at=timezone.now(), chunks_total=1, chunks_done=1,
        already_billed=37, billed=0,
    )  # fmt: skip
    client.force_login(superuser)
    page = client.get(f"/fr/admin/billing/billrun/{run.pk}/change/").content.decode()
    assert "Cette facturation est terminée." in page
    assert "Terminée." not in page.split('class="help"', 1)[1].split("</p>", 1)[0]  # the status, not twice
    assert "1 sur 1 lot" in page and "1 lots" not in page
    assert "novembre 2026" in page and "1 novembre 2026" not in page

    listing = client.get("/fr/admin/billing/billrun/").content.decode()
    assert "déjà facturés" in listing.lower() and ">37<" in listing
    assert "novembre 2026" in listing and "1 novembre 2026" not in listing


def test_a_supervisors_start_page_offers_only_their_agency_and_one_button(
    client: Client, supervisor, superuser, subscriber, two_agencies, django_capture_on_commit_callbacks
) -> None:
    client.force_login(supervisor)
    page = client.get(ADD).content.decode()
    select = re.search(r'<select name="agency".*?</select>', page, re.S).group(0)
    assert "---------" not in select and "Vide : toutes les agences" not in page
    assert re.search(rf'<option value="{subscriber.agency_id}" selected>', select)
    assert re.findall(r'<input type="submit"[^>]*>', page) == [
        '<input type="submit" value="Lancer la facturation" class="default" name="_save">'
    ]
    assert "Ajouter facturation" not in page and "› Lancer une facturation" in page.replace("&rsaquo;", "›")

    # The pre-selected agency posts as the form sends it, and the run starts.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD, {"period": f"{PERIOD:%Y-%m}", "agency": subscriber.agency_id})
    assert response.status_code == 302 and BillRun.objects.get().agency_id == subscriber.agency_id

    # A superuser may still bill every agency: the empty choice stays, and says so.
    client.force_login(superuser)
    page = client.get(ADD).content.decode()
    assert "---------" in re.search(r'<select name="agency".*?</select>', page, re.S).group(0)
    assert "Vide : toutes les agences" in page
