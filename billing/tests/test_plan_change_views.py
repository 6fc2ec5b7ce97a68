"""The plan pages (choose, preview, confirm, cancel) and the back office's plan
changes, as Alice, Bob and the agencies' staff meet them."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from billing.models import Plan, PlanChange, ServiceAccount, ServiceKind, Unit
from billing.plan_changes import plan_change_request
from core.money import format_money

from .factories import ConsumptionFactory, PlanFactory, ServiceAccountFactory
from .test_plan_changes import mobile_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def big(db) -> Plan:
    return mobile_plan("MOB-30", "45.000", allows_immediate_change=True)


@pytest.fixture
def small(db) -> Plan:
    return mobile_plan("MOB-10", "25.000", allows_immediate_change=True)


@pytest.fixture
def approval_plan(db) -> Plan:
    return mobile_plan("MOB-PRO", "80.000", change_needs_approval=True)


@pytest.fixture
def account(subscriber, big, small, approval_plan) -> ServiceAccount:
    account = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    ConsumptionFactory(account=account, period=dt.date(2026, 10, 1), unit=Unit.GB, quantity=Decimal("12"))
    return account


def plan_url(account: ServiceAccount) -> str:
    return reverse("billing:plan", args=[account.number])


def change_url(account: ServiceAccount) -> str:
    return reverse("billing:plan_change", args=[account.number])


def body(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


def flash(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


# --- The plan page ----------------------------------------------------------------


def test_the_plan_page_shows_the_current_plan_once_and_the_other_plans(
    subscriber_client: Client, account, big, small
) -> None:
    response = subscriber_client.get(plan_url(account))
    assert response.status_code == 200
    page = body(response)
    assert page.count(big.name_fr) == 1  # issue 10: it was shown twice
    assert page.count('data-testid="current-plan"') == 1
    assert big not in response.context["others"] and small in response.context["others"]
    assert page.count('data-testid="other-plan"') == 2  # small and the one needing approval
    assert f'name="plan" value="{small.pk}"' in page
    assert 'data-testid="open-change"' not in page


def test_the_plan_page_offers_plans_of_the_accounts_kind_only(subscriber_client: Client, account) -> None:
    electricity = PlanFactory(kind=ServiceKind.ELECTRICITY, name_fr="Résidentiel basse tension")
    response = subscriber_client.get(plan_url(account))
    assert electricity not in response.context["others"]
    assert f'value="{electricity.pk}"' not in body(response)


def test_a_retired_current_plan_is_shown_once_with_its_badge(subscriber_client: Client, account, big) -> None:
    Plan.objects.filter(pk=big.pk).update(is_active=False)
    page = body(subscriber_client.get(plan_url(account)))
    assert page.count(big.name_fr) == 1 and "plus commercialisé" in page  # "no longer offered", in French


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_the_plan_pages_read_in_every_language(client: Client, subscriber, account, small, language) -> None:
    client.force_login(subscriber.user)
    with translation.override(language):
        plan_page = client.get(reverse("billing:plan", args=[account.number]))
        preview = client.get(
            reverse("billing:plan_change", args=[account.number]), {"plan": small.pk, "mode": "immediate"}
        )
    assert plan_page.status_code == preview.status_code == 200
    html = body(preview)
    assert f'lang="{language}"' in html and (('dir="rtl"' in html) == (language == "ar"))
    if language != "en":
        assert "Change plan" not in html and "Current plan" not in html  # translated, not English


# --- Preview, confirm, cancel -------------------------------------------------------


def test_the_preview_shows_what_changes_and_confirms_nothing(subscriber_client: Client, account, small) -> None:
    response = subscriber_client.get(change_url(account), {"plan": small.pk})
    assert response.status_code == 200
    page = body(response)
    preview = response.context["preview"]
    assert preview.effective_date.day == 1
    assert format_money(Decimal("45.000"), "TND", "fr") in page and format_money(Decimal("25.000"), "TND", "fr") in page
    assert 'data-testid="estimate-new"' in page
    assert 'name="csrfmiddlewaretoken"' in page and 'data-testid="confirm-change"' in page
    assert "mode=immediate" in page  # the plan allows it: the other way is offered
    assert not PlanChange.objects.exists()


def test_the_immediate_preview_shows_this_months_days(subscriber_client: Client, account, small) -> None:
    response = subscriber_client.get(change_url(account), {"plan": small.pk, "mode": "immediate"})
    proration = response.context["preview"].proration
    assert proration is not None and proration.days_old + proration.days_new == proration.month_days
    assert format_money(proration.amount, "TND", "fr") in body(response)


def test_confirming_schedules_the_change_and_the_page_shows_it_with_a_cancel_button(
    csrf_client: Client, account, small
) -> None:
    # Without the token, refused.
    assert csrf_client.post(change_url(account), {"plan": small.pk}).status_code == 403
    csrf_client.get(change_url(account), {"plan": small.pk})
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post(change_url(account), {"plan": small.pk, "csrfmiddlewaretoken": token}, follow=True)
    change = PlanChange.objects.get()
    assert change.status == PlanChange.Status.SCHEDULED and change.to_plan == small
    assert response.redirect_chain[-1][0] == plan_url(account)
    page = body(response)
    assert 'data-testid="open-change"' in page and 'data-status="scheduled"' in page
    assert reverse("billing:plan_change_cancel", args=[account.number, change.pk]) in page
    assert "Voir ce qui change" not in page  # one change at a time
    assert any("MOB-10" in m for m in flash(response))

    response = csrf_client.post(
        reverse("billing:plan_change_cancel", args=[account.number, change.pk]),
        {"csrfmiddlewaretoken": token},
        follow=True,
    )
    change.refresh_from_db()
    assert change.status == PlanChange.Status.CANCELLED
    assert 'data-testid="open-change"' not in body(response)


def test_an_immediate_change_applies_at_once(subscriber_client: Client, account, small) -> None:
    response = subscriber_client.post(change_url(account), {"plan": small.pk, "mode": "immediate"}, follow=True)
    account.refresh_from_db()
    assert account.plan == small
    assert PlanChange.objects.get().status == PlanChange.Status.APPLIED
    assert response.context["current"] == small


def test_a_change_needing_approval_shows_as_waiting(subscriber_client: Client, account, approval_plan) -> None:
    page = body(subscriber_client.get(change_url(account), {"plan": approval_plan.pk}))
    assert "doit d'abord accepter ce changement" in page  # the pages are French here
    response = subscriber_client.post(change_url(account), {"plan": approval_plan.pk}, follow=True)
    assert PlanChange.objects.get().status == PlanChange.Status.PENDING_APPROVAL
    assert 'data-status="pending_approval"' in body(response)


@pytest.mark.parametrize(
    "params",
    [{}, {"plan": "x"}, {"plan": "999999"}, {"plan": "1", "mode": "tomorrow"}, {"plan": "-1"}],
    ids=["nothing", "not-a-number", "unknown", "bad-mode", "negative"],
)
def test_nonsense_choices_go_back_to_the_plan_page_with_a_message(subscriber_client: Client, account, params) -> None:
    for method in (subscriber_client.get, subscriber_client.post):
        response = method(change_url(account), params)
        assert response.status_code == 302 and response["Location"] == plan_url(account)
    assert not PlanChange.objects.exists()


def test_refused_changes_come_back_with_the_reason(subscriber_client: Client, account, big) -> None:
    water = PlanFactory(kind=ServiceKind.WATER)
    for plan, says in ((big, "déjà le tarif de ce compte"), (water, "choisissez l'un des tarifs")):
        response = subscriber_client.post(change_url(account), {"plan": plan.pk}, follow=True)
        assert any(says in m.lower() for m in flash(response)), flash(response)
    later_only = mobile_plan("MOB-20", "35.000")
    response = subscriber_client.get(change_url(account), {"plan": later_only.pk, "mode": "immediate"}, follow=True)
    assert any("qu'à partir de la période suivante" in m for m in flash(response))
    assert not PlanChange.objects.exists()


def test_a_suspended_account_says_why_it_cannot_change(subscriber_client: Client, account, small) -> None:
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.SUSPENDED)
    page = body(subscriber_client.get(plan_url(account)))
    assert "pas actif" in page and "Voir ce qui change" not in page


def test_the_plan_page_only_takes_get_and_post(subscriber_client: Client, account) -> None:
    assert subscriber_client.put(change_url(account)).status_code == 405
    assert subscriber_client.get(reverse("billing:plan_change_cancel", args=[account.number, 1])).status_code == 405


# --- Bob sees nothing of Alice's -----------------------------------------------------


def test_bob_gets_404_on_every_plan_page_of_alices_account(
    client: Client, account, small, subscriber, other_subscriber
) -> None:
    change = plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)
    client.force_login(other_subscriber.user)
    assert client.get(plan_url(account)).status_code == 404
    assert client.get(change_url(account), {"plan": small.pk}).status_code == 404
    assert client.post(change_url(account), {"plan": small.pk}).status_code == 404
    cancel = reverse("billing:plan_change_cancel", args=[account.number, change.pk])
    assert client.post(cancel).status_code == 404
    change.refresh_from_db()
    assert change.status == PlanChange.Status.SCHEDULED


def test_alices_change_cannot_be_cancelled_through_bobs_account(
    client: Client, account, small, subscriber, other_subscriber, big
) -> None:
    change = plan_change_request(account=account, to_plan=small, requested_by=subscriber.user)
    bobs = ServiceAccountFactory(subscriber=other_subscriber, kind=ServiceKind.MOBILE, plan=big)
    client.force_login(other_subscriber.user)
    assert client.post(reverse("billing:plan_change_cancel", args=[bobs.number, change.pk])).status_code == 404
    change.refresh_from_db()
    assert change.status == PlanChange.Status.SCHEDULED


def test_anonymous_visitors_are_sent_to_login(client: Client, account, small) -> None:
    for response in (client.get(change_url(account), {"plan": small.pk}), client.post(change_url(account))):
        assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


# --- The bill page -------------------------------------------------------------------


def test_the_bill_shows_the_proration_line_in_days(subscriber_client: Client, account, small, subscriber) -> None:
    from billing.services import bill_issue

    plan_change_request(
        account=account, to_plan=small, requested_by=subscriber.user, mode="immediate", today=dt.date(2028, 2, 15)
    )
    bill = bill_issue(account=account, period=dt.date(2028, 2, 1), issue_date=dt.date(2028, 3, 5))
    page = body(subscriber_client.get(reverse("billing:bill_detail", args=[bill.number])))
    assert "14 jours" in page and format_money(Decimal("9.655"), "TND", "fr") in page


# --- The back office ------------------------------------------------------------------


@pytest.fixture
def pending(account, subscriber, approval_plan) -> PlanChange:
    return plan_change_request(account=account, to_plan=approval_plan, requested_by=subscriber.user)


def _changelist() -> str:
    return reverse("admin:billing_planchange_changelist")


def _action(client: Client, action: str, change: PlanChange, **extra) -> object:
    data = {"action": action, "_selected_action": [change.pk], **extra}
    return client.post(_changelist(), data, follow=True)


def test_a_supervisor_sees_the_pending_changes_and_approves_one(client: Client, supervisor, pending) -> None:
    client.force_login(supervisor)
    response = client.get(_changelist(), {"status": "open"})
    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [pending.pk]
    choices = [name for name, _label in response.context["action_form"].fields["action"].choices]
    assert "approve" in choices and "reject" in choices
    assert client.get(reverse("admin:billing_planchange_change", args=[pending.pk])).status_code == 200
    _action(client, "approve", pending)
    pending.refresh_from_db()
    assert pending.status == PlanChange.Status.SCHEDULED and pending.decided_by == supervisor


def test_a_supervisor_rejects_with_a_reason(client: Client, supervisor, pending) -> None:
    client.force_login(supervisor)
    first = _action(client, "reject", pending)
    assert b'name="reason"' in first.content  # the second step asks why
    pending.refresh_from_db()
    assert pending.status == PlanChange.Status.PENDING_APPROVAL
    _action(client, "reject", pending, confirm="1", reason="Needs a trade register")
    pending.refresh_from_db()
    assert pending.status == PlanChange.Status.REJECTED and pending.reason == "Needs a trade register"


def test_a_clerk_sees_the_changes_read_only_without_decisions(client: Client, clerk, pending) -> None:
    client.force_login(clerk)
    response = client.get(_changelist())
    assert response.status_code == 200 and [c.pk for c in response.context["cl"].result_list] == [pending.pk]
    assert response.context["action_form"] is None  # no action a clerk may run
    _action(client, "approve", pending)
    pending.refresh_from_db()
    assert pending.status == PlanChange.Status.PENDING_APPROVAL
    change_page = body(client.get(reverse("admin:billing_planchange_change", args=[pending.pk])))
    assert 'name="_save"' not in change_page


def test_another_agencys_supervisor_sees_nothing_and_decides_nothing(client: Client, pending) -> None:
    from django.contrib.auth.models import Group

    from accounts import roles
    from accounts.tests.factories import AgencyFactory, UserFactory

    elsewhere = UserFactory(email="sup@elsewhere.example", is_staff=True)
    elsewhere.groups.add(Group.objects.get(name=roles.SUPERVISOR))
    elsewhere.agencies.add(AgencyFactory())
    client.force_login(elsewhere)
    assert list(client.get(_changelist()).context["cl"].result_list) == []
    assert client.get(reverse("admin:billing_planchange_change", args=[pending.pk])).status_code == 404
    _action(client, "approve", pending)
    pending.refresh_from_db()
    assert pending.status == PlanChange.Status.PENDING_APPROVAL


def test_the_changelist_searches_by_account_number_as_read_out(client: Client, supervisor, pending) -> None:
    client.force_login(supervisor)
    spoken = re.sub(r"(\d{3})(\d{3})(\d{4})", r"\1 \2 \3", pending.account.number)
    result = client.get(_changelist(), {"q": spoken}).context["cl"].result_list
    assert [c.pk for c in result] == [pending.pk]


@pytest.mark.parametrize(("language", "separator"), [("ar", "، "), ("fr", ", ")])
def test_the_preview_lists_the_usage_as_the_consumption_page_writes_it(
    client: Client, subscriber, small, big, language: str, separator: str
) -> None:
    """The usage read "10,611 Go, 230 min" in Arabic too: a Latin comma, and a
    data volume in three decimals where the consumption page shows two."""
    account = ServiceAccountFactory(subscriber=subscriber, kind=ServiceKind.MOBILE, plan=big)
    ConsumptionFactory(account=account, period=dt.date(2026, 10, 1), unit=Unit.GB, quantity=Decimal("10.611"))
    ConsumptionFactory(account=account, period=dt.date(2026, 10, 1), unit=Unit.MINUTES, quantity=Decimal("230"))
    client.force_login(subscriber.user)
    with translation.override(language):  # restored after: the request leaves its language active
        page = body(client.get(change_url(account), {"plan": small.pk}))
        gb, minutes = str(Unit.GB.label), str(Unit.MINUTES.label)
    hint = re.search(r"<p class=\"hint\">[^<]*?:\s*(<bdi>.*?)</p>", page, re.S)
    assert hint, page
    items = re.findall(r"<bdi>([^<]*)</bdi>", hint.group(1))
    assert sorted(items) == sorted([f"10,61 {gb}", f"230 {minutes}"])
    assert hint.group(1).count(f"</bdi>{separator}<bdi>") == 1
