"""Agency scoping of the back office: another agency's clerk sees none of Alice's
agency, on any screen of any ModelAdmin, even holding every permission."""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.scoping import GLOBAL, AgencyScopedAdmin
from accounts.selectors import staff_agency_ids
from accounts.tests.factories import AgencyFactory, SubscriberFactory
from billing.tests.factories import BillFactory, ConsumptionFactory, ServiceAccountFactory
from core.models import Sequence

pytestmark = pytest.mark.django_db

# Core knows nothing of agencies (it may not import accounts): its one admin is global.
GLOBAL_OUTSIDE_THE_MIXIN = {Sequence}


def test_every_model_admin_declares_how_its_rows_reach_an_agency() -> None:
    for model, model_admin in admin.site._registry.items():
        if model in GLOBAL_OUTSIDE_THE_MIXIN:
            continue
        assert isinstance(model_admin, AgencyScopedAdmin), f"{type(model_admin).__name__} is not agency-scoped"
        assert hasattr(model_admin, "agency_path"), f"{type(model_admin).__name__} declares no agency_path"


@pytest.fixture
def alices_agency(subscriber, clerk, supervisor) -> dict:
    """One row of every scoped model, all in Alice's agency."""
    from billing.approvals import account_transfer_request, reading_correct
    from billing.models import PrintRequest
    from billing.plan_changes import plan_change_request
    from billing.services import sms_alert_subscribe
    from billing.tests.factories import PlanFactory
    from notifications.models import DeliveryReport, Message
    from notifications.verification import channel_add

    account = ServiceAccountFactory(subscriber=subscriber)
    bill = BillFactory(account=account)
    consumption = ConsumptionFactory(account=account)
    channel = channel_add(subscriber=subscriber, kind="sms", address="20555111")
    message = Message.objects.get(channel=channel)
    neighbour = SubscriberFactory(agency=subscriber.agency)
    rows = [
        subscriber.user, clerk, subscriber.agency, subscriber, neighbour, account, consumption, bill, channel,
        channel.verifications.get(), message,
        DeliveryReport.objects.create(
            provider="console", provider_message_id="x1", raw_status="Success", status="delivered", message=message
        ),
        sms_alert_subscribe(account=account, started_on=bill.period),
        PrintRequest.objects.create(bill=bill, agency=subscriber.agency, requested_by=subscriber.user),
        account_transfer_request(account=account, new_subscriber=neighbour, reason="Sold the house", requested_by=clerk),
        reading_correct(
            consumption=consumption, quantity=Decimal("12.000"), meter_index=None, reason="Misread", corrected_by=supervisor
        ),
        _payment(account),
        _order(account),
        *_counter_rows(account, clerk, supervisor),
        plan_change_request(account=account, to_plan=PlanFactory(), requested_by=subscriber.user),
        *_dunning_rows(account, supervisor),
        _bill_run(subscriber.agency),
    ]  # fmt: skip
    by_model: dict = {}
    for row in rows:
        by_model.setdefault(type(row), set()).add(row.pk)
    # The audit trail of all the above, every entry in Alice's agency.
    by_model[LogEntry] = set(
        LogEntry.objects.filter(additional_data__agency_id=subscriber.agency_id).values_list("pk", flat=True)
    )
    return by_model


def _dunning_rows(account, supervisor) -> list:
    """An account a bill behind (the ladder's records and order), exempted, with a visit booked."""
    import datetime as dt

    from billing.appointments import appointment_schedule
    from billing.dunning import dunning_exemption_grant, dunning_run
    from billing.models import DunningStep, FieldOrder, OverdueAccount

    late = BillFactory(account=account, period=dt.date(2020, 1, 1), due_date=dt.date(2020, 2, 20))
    dunning_run(today=late.due_date + dt.timedelta(days=15))
    dunning_run(today=late.due_date + dt.timedelta(days=30))
    return [
        *DunningStep.objects.filter(account=account),
        FieldOrder.objects.get(account=account),
        OverdueAccount.objects.get(pk=account.pk),
        dunning_exemption_grant(
            account=account,
            reason="medical",
            note="",
            starts_on=late.due_date,
            ends_on=None,
            granted_by=supervisor,
            today=late.due_date,
        ),
        appointment_schedule(
            account=account,
            kind="smart_meter",
            date=dt.date.today() + dt.timedelta(days=2),
            window_start=dt.time(13),
            window_end=dt.time(17),
            scheduled_by=supervisor,
        ),
    ]


def _payment(account):
    import datetime as dt

    from payments.services import payment_apply
    from payments.tests.factories import ProviderFactory

    return payment_apply(
        provider=ProviderFactory(), reference="SCOPE-1", account_number=account.number, amount=Decimal("1.000"),
        currency="TND", paid_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    ).payment  # fmt: skip


def _order(account):
    from django.utils import timezone

    from payments.models import PaymentOrder
    from payments.tests.factories import ProviderFactory

    return PaymentOrder.objects.create(
        subscriber=account.subscriber, account=account, provider=ProviderFactory(), reference="POSCOPE1",
        amount=Decimal("1.000"), currency="TND", expires_at=timezone.now(), status=PaymentOrder.Status.EXPIRED,
    )  # fmt: skip


def _counter_rows(account, clerk, supervisor) -> list:
    """A counter payment at Alice's agency, its counter provider, and that
    counter's settlement file with its line."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from payments.counter import counter_payment_record
    from payments.settlement import settlement_import

    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("2.000"), method="cash")
    payment = counter.payment
    paid_at = timezone.localtime(payment.paid_at).isoformat()
    csv = f"reference,amount,currency,paid_at\n{payment.reference},2.000,TND,{paid_at}\n".encode()
    imported = settlement_import(provider=payment.provider, file=SimpleUploadedFile("day.csv", csv), user=supervisor)
    return [counter, payment.provider, imported, imported.lines.get()]


def _bill_run(agency):
    import datetime as dt

    from billing.models import BillRun

    return BillRun.objects.create(period=dt.date(2026, 11, 1), agency=agency, issue_date=dt.date(2026, 12, 2))


@pytest.fixture
def intruder(client: Client, other_agency_clerk) -> Client:
    """Another agency's clerk given every permission, so that only scoping, not a
    missing permission, stands between them and Alice's agency."""
    other_agency_clerk.user_permissions.set(Permission.objects.all())
    client.force_login(other_agency_clerk)
    return client


def _scoped_admins() -> list:
    from backoffice.models import Customer

    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, AgencyScopedAdmin)
        and model_admin.agency_path is not GLOBAL
        # Customer 360's search and page are no changelist and change form: their
        # own scoping tests are in backoffice/tests/test_customer_360.py.
        and model is not Customer
    ]


def test_every_scoped_admin_has_a_row_of_alices_agency_to_hide(alices_agency: dict) -> None:
    # Otherwise the walk below would prove nothing for that admin.
    assert {model for model, _ in _scoped_admins()} <= alices_agency.keys()


def test_another_agencys_clerk_sees_no_row_of_alices_agency_on_any_changelist(
    intruder: Client, alices_agency: dict
) -> None:
    for model, _ in _scoped_admins():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        for params in ({}, {"_to_field": "id", "_popup": "1"}):  # the list, and the raw-id lookup pop-up
            response = intruder.get(url, params)
            assert response.status_code == 200, url
            shown = {row.pk for row in response.context["cl"].result_list}
            assert not shown & alices_agency[model], (url, params)


def test_another_agencys_clerk_gets_404_for_each_row_of_alices_agency(intruder: Client, alices_agency: dict) -> None:
    for model, _ in _scoped_admins():
        meta = model._meta
        for pk in alices_agency[model]:
            for view in ("change", "history", "delete"):
                url = reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[pk])
                response = intruder.get(url)
                assert response.status_code == 404, url


def test_autocomplete_offers_another_agencys_clerk_nothing_of_alices_agency(
    intruder: Client, alices_agency: dict
) -> None:
    asked = 0
    for source in admin.site._registry:
        for field in source._meta.get_fields():
            if not (field.is_relation and field.concrete and field.remote_field):
                continue
            target_admin = admin.site._registry.get(field.remote_field.model)
            if target_admin is None or not target_admin.search_fields or target_admin.agency_path is GLOBAL:
                continue
            response = intruder.get(
                reverse("admin:autocomplete"),
                {"app_label": source._meta.app_label, "model_name": source._meta.model_name, "field_name": field.name},
            )
            assert response.status_code == 200, (source, field.name)
            offered = {int(result["id"]) for result in response.json()["results"]}
            assert not offered & alices_agency[field.remote_field.model], (source, field.name)
            asked += 1
    assert asked >= 5


def test_foreign_key_choices_on_add_and_change_forms_hold_nothing_of_alices_agency(
    intruder: Client, alices_agency: dict, other_agency_clerk
) -> None:
    own = SubscriberFactory(agency=other_agency_clerk.agencies.get())
    own_rows = {"subscriber": own.pk, "serviceaccount": ServiceAccountFactory(subscriber=own).pk}
    checked = 0
    for model in admin.site._registry:
        meta = model._meta
        pages = [reverse(f"admin:{meta.app_label}_{meta.model_name}_add")]
        if meta.model_name in own_rows:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[own_rows[meta.model_name]]))
        for url in pages:
            response = intruder.get(url)
            if response.status_code == 403:  # rows only services write
                continue
            assert response.status_code == 200, url
            for name, formfield in response.context["adminform"].form.fields.items():
                if not isinstance(formfield, ModelChoiceField | ModelMultipleChoiceField):
                    continue
                related = formfield.queryset.model
                offered = set(formfield.queryset.values_list("pk", flat=True))
                assert not offered & alices_agency.get(related, set()), (url, name)
                checked += 1
    assert checked >= 5


def test_a_raw_id_typed_by_hand_for_alice_is_refused(intruder: Client, subscriber) -> None:
    response = intruder.post(
        reverse("admin:accounts_contactchannel_add"),
        {"subscriber": subscriber.pk, "kind": "sms", "address": "20999888", "language": "fr"},
    )
    assert response.status_code == 200 and "subscriber" in response.context["adminform"].form.errors
    assert not subscriber.channels.exists()


def test_the_agency_filter_lists_only_the_clerks_agencies(client: Client, clerk, subscriber, other_subscriber) -> None:
    SubscriberFactory()  # a third agency
    clerk.agencies.add(other_subscriber.agency)  # one agency alone shows no filter at all
    client.force_login(clerk)
    response = client.get(reverse("admin:accounts_subscriber_changelist"))
    agency_filter = next(spec for spec in response.context["cl"].filter_specs if spec.field_path == "agency")
    assert {pk for pk, _label in agency_filter.lookup_choices} == {subscriber.agency_id, other_subscriber.agency_id}


def test_an_action_on_everything_touches_only_the_clerks_agency(client: Client, clerk, subscriber) -> None:
    from billing.models import PrintRequest

    mine = PrintRequest.objects.create(
        bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)), agency=subscriber.agency
    )
    theirs = PrintRequest.objects.create(bill=BillFactory(), agency=AgencyFactory())
    client.force_login(clerk)
    response = client.post(
        reverse("admin:billing_printrequest_changelist"),
        {"action": "mark_printed", "select_across": "1", "index": "0", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("printed", "pending")


def test_a_clerk_in_two_agencies_sees_both_and_no_third(client: Client, clerk, subscriber, other_subscriber) -> None:
    third = SubscriberFactory()
    clerk.agencies.add(other_subscriber.agency)
    client.force_login(clerk)
    response = client.get(reverse("admin:accounts_subscriber_changelist"))
    assert set(response.context["cl"].result_list) == {subscriber, other_subscriber}
    assert third not in response.context["cl"].result_list


def test_the_auditor_reads_every_agency_and_changes_nothing(
    client: Client, auditor, subscriber, other_subscriber
) -> None:
    client.force_login(auditor)
    response = client.get(reverse("admin:accounts_subscriber_changelist"))
    assert set(response.context["cl"].result_list) == {subscriber, other_subscriber}
    url = reverse("admin:accounts_subscriber_change", args=[subscriber.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"full_name": "Changed", "preferred_language": "fr", "agency": subscriber.agency_id})
    subscriber.refresh_from_db()
    assert subscriber.full_name == "Alice Ben Salah"
    assert client.get(reverse("admin:accounts_subscriber_add")).status_code == 403


def test_staff_agency_ids_is_asked_once_per_request(clerk, subscriber) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert staff_agency_ids(clerk) == frozenset([subscriber.agency_id])
        assert staff_agency_ids(clerk) == frozenset([subscriber.agency_id])
    assert len(queries) == 2  # is it an auditor? which agencies? — then never again


def test_staff_agency_ids_of_each_role(clerk, supervisor, auditor, superuser, subscriber) -> None:
    assert staff_agency_ids(supervisor) == frozenset([subscriber.agency_id])
    assert staff_agency_ids(auditor) is None
    assert staff_agency_ids(superuser) is None
    assert staff_agency_ids(subscriber.user) == frozenset()  # not staff: nothing
