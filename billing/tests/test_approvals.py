"""Identity and money are never plain edits: transfers and login re-links wait for
a supervisor of the agency who is not the one who asked; reading corrections
keep the reading they replace."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import SubscriberFactory, UserFactory
from billing.approvals import (
    ChangeRefused,
    account_transfer_request,
    change_request_approve,
    change_request_reject,
    reading_correct,
    subscriber_login_relink_request,
)
from billing.models import ChangeRequest, ReadingCorrection
from billing.tests.factories import ConsumptionFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(subscriber):
    return ServiceAccountFactory(subscriber=subscriber)


@pytest.fixture
def heir(subscriber):
    return SubscriberFactory(agency=subscriber.agency, full_name="Sami Ben Salah")


def _post_action(client: Client, action: str, change_request: ChangeRequest):
    return client.post(
        reverse("admin:billing_changerequest_changelist"), {"action": action, "_selected_action": [change_request.pk]}
    )


def test_a_clerk_asks_for_a_transfer_with_a_reason_and_nothing_changes_yet(
    client: Client, clerk, account, heir
) -> None:
    client.force_login(clerk)
    url = reverse("admin:billing_changerequest_transfer", args=[account.pk])
    assert client.get(url).status_code == 200
    refused = client.post(url, {"new_subscriber": heir.pk, "reason": "  "})
    assert refused.status_code == 200 and not ChangeRequest.objects.exists()
    response = client.post(url, {"new_subscriber": heir.pk, "reason": "Father passed away, son takes the contract"})
    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    assert (request.status, request.requested_by, request.to_subscriber) == ("pending", clerk, heir)
    account.refresh_from_db()
    assert account.subscriber != heir


def test_the_accounts_subscriber_cannot_be_edited_on_its_page(client: Client, supervisor, account, heir) -> None:
    from accounts.tests.test_admin import _form_post_data

    client.force_login(supervisor)
    url = reverse("admin:billing_serviceaccount_change", args=[account.pk])
    data = {**_form_post_data(client.get(url)), "subscriber": str(heir.pk), "meter_number": "M-NEW"}
    assert client.post(url, data).status_code == 302
    account.refresh_from_db()
    assert account.meter_number == "M-NEW" and account.subscriber != heir


def test_a_clerk_cannot_approve_and_the_supervisor_who_asked_cannot_either(
    client: Client, clerk, supervisor, account, heir
) -> None:
    by_clerk = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    client.force_login(clerk)
    _post_action(client, "approve", by_clerk)
    with pytest.raises(ChangeRefused) as refused:
        change_request_approve(change_request=by_clerk, decided_by=clerk)
    assert refused.value.code == "not_allowed"
    change_request_reject(change_request=by_clerk, decided_by=supervisor)

    own = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=supervisor)
    with pytest.raises(ChangeRefused) as refused:
        change_request_approve(change_request=own, decided_by=supervisor)
    assert refused.value.code == "own_request"
    account.refresh_from_db()
    assert account.subscriber != heir


def test_the_database_refuses_a_request_decided_by_the_one_who_asked(supervisor, account, heir) -> None:
    own = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=supervisor)
    with pytest.raises(IntegrityError):
        ChangeRequest.objects.filter(pk=own.pk).update(
            status="approved", decided_by=supervisor, decided_at=timezone.now()
        )


def test_the_agencys_supervisor_approves_and_the_contract_moves(
    client: Client, clerk, supervisor, account, heir
) -> None:
    request = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    client.force_login(supervisor)
    assert _post_action(client, "approve", request).status_code == 302
    request.refresh_from_db()
    account.refresh_from_db()
    assert (request.status, request.decided_by, account.subscriber) == ("approved", supervisor, heir)
    with pytest.raises(ChangeRefused) as refused:  # approving twice changes nothing twice
        change_request_approve(change_request=request, decided_by=supervisor)
    assert refused.value.code == "already_decided"


def test_another_agencys_supervisor_cannot_decide(clerk, supervisor, account, heir) -> None:
    from accounts.tests.factories import AgencyFactory

    stranger = UserFactory(is_staff=True)
    stranger.groups.set(supervisor.groups.all())
    stranger.agencies.add(AgencyFactory())
    request = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    with pytest.raises(ChangeRefused):
        change_request_approve(change_request=request, decided_by=stranger)
    account.refresh_from_db()
    assert account.subscriber != heir


def test_a_request_made_stale_by_another_change_is_refused(clerk, supervisor, account, heir) -> None:
    request = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    third = SubscriberFactory(agency=account.subscriber.agency)
    type(account).objects.filter(pk=account.pk).update(subscriber=third)  # e.g. a data fix by head office
    with pytest.raises(ChangeRefused) as refused:
        change_request_approve(change_request=request, decided_by=supervisor)
    assert refused.value.code == "stale"
    request.refresh_from_db()
    assert request.status == "pending"


def test_one_open_request_per_contract(clerk, account, heir) -> None:
    account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    with pytest.raises(ChangeRefused) as refused:
        account_transfer_request(account=account, new_subscriber=heir, reason="Again", requested_by=clerk)
    assert refused.value.code == "already_pending"


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_approving_at_once_apply_the_change_once(subscriber, clerk, supervisor, account, heir) -> None:
    second = UserFactory(is_staff=True)
    second.groups.set(supervisor.groups.all())
    second.agencies.add(subscriber.agency)
    request = account_transfer_request(account=account, new_subscriber=heir, reason="Sold", requested_by=clerk)
    outcomes: list[str] = []

    def decide(user) -> None:  # type: ignore[no-untyped-def]
        try:
            change_request_approve(change_request=request, decided_by=user)
            outcomes.append("approved")
        except ChangeRefused as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(user,)) for user in (supervisor, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already_decided", "approved"]


def test_a_login_relink_waits_for_approval_then_the_old_login_is_closed(
    client: Client, clerk, supervisor, subscriber, password
) -> None:
    old_login = subscriber.user
    new_login = UserFactory(email="alice.new@example.com", phone="+21620999000")
    client.force_login(clerk)
    url = reverse("admin:billing_changerequest_relink", args=[subscriber.pk])
    response = client.post(url, {"new_login": "20 999 000", "reason": "Lost her phone, new number"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.user == old_login  # not before a supervisor says so

    client.force_login(supervisor)
    _post_action(client, "approve", ChangeRequest.objects.get())
    subscriber.refresh_from_db()
    old_login.refresh_from_db()
    assert subscriber.user == new_login and not old_login.is_active
    assert Client().post("/fr/login/", {"username": "alice.new@example.com", "password": password}).status_code == 302
    assert Client().post("/fr/login/", {"username": old_login.email, "password": password}).status_code == 200


def test_a_login_relink_to_someone_elses_login_is_refused(clerk, subscriber, other_subscriber) -> None:
    with pytest.raises(ChangeRefused) as refused:
        subscriber_login_relink_request(
            subscriber=subscriber, new_login=other_subscriber.user, reason="Family", requested_by=clerk
        )
    assert refused.value.code == "login_taken"


def test_the_subscribers_login_cannot_be_edited_on_its_page(client: Client, superuser, subscriber) -> None:
    from accounts.tests.test_admin import _form_post_data

    stranger = UserFactory()
    client.force_login(superuser)
    url = reverse("admin:accounts_subscriber_change", args=[subscriber.pk])
    data = {**_form_post_data(client.get(url)), "user": str(stranger.pk), "full_name": "Alice B. Salah"}
    assert client.post(url, data).status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.full_name == "Alice B. Salah" and subscriber.user != stranger


def test_a_clerk_cannot_reach_another_agencys_subscriber_to_ask_a_relink(
    client: Client, other_agency_clerk, subscriber
) -> None:
    client.force_login(other_agency_clerk)
    assert client.get(reverse("admin:billing_changerequest_relink", args=[subscriber.pk])).status_code == 404


def test_a_reading_correction_keeps_the_reading_it_replaces(client: Client, clerk, supervisor, account) -> None:
    reading = ConsumptionFactory(account=account, quantity=Decimal("1324.000"))
    url = reverse("admin:billing_consumption_correct", args=[reading.pk])
    client.force_login(clerk)
    assert client.get(url).status_code == 403  # clerks ask; supervisors correct

    client.force_login(supervisor)
    response = client.post(url, {"quantity": "1234", "meter_index": "", "reason": "Digits swapped at reading"})
    assert response.status_code == 302
    reading_correct(
        consumption=reading, quantity=Decimal("1243"), meter_index=None, reason="Second look", corrected_by=supervisor
    )
    reading.refresh_from_db()
    corrections = list(ReadingCorrection.objects.filter(consumption=reading).order_by("corrected_at"))
    assert reading.quantity == Decimal("1243.000")
    assert [c.original_quantity for c in corrections] == [Decimal("1324.000"), Decimal("1234.000")]
    assert corrections[0].corrected_by == supervisor and corrections[0].reason == "Digits swapped at reading"


def test_a_reading_cannot_be_edited_on_its_page(client: Client, superuser, account) -> None:
    from accounts.tests.test_admin import _form_post_data

    reading = ConsumptionFactory(account=account, quantity=Decimal("100.000"))
    client.force_login(superuser)
    url = reverse("admin:billing_consumption_change", args=[reading.pk])
    client.post(url, {**_form_post_data(client.get(url)), "quantity": "1.000"})
    reading.refresh_from_db()
    assert reading.quantity == Decimal("100.000")


def test_a_correction_needs_a_reason(supervisor, account) -> None:
    reading = ConsumptionFactory(account=account)
    with pytest.raises(ChangeRefused) as refused:
        reading_correct(
            consumption=reading, quantity=Decimal("1"), meter_index=None, reason=" ", corrected_by=supervisor
        )
    assert refused.value.code == "reason_required"
    assert not ReadingCorrection.objects.exists()
