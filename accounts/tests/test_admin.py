"""Every ModelAdmin answers, and a clerk finds a customer the way they are told about."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from billing.tests.factories import BillFactory, ConsumptionFactory, ServiceAccountFactory
from core.models import Sequence

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client: Client, superuser) -> Client:
    client.force_login(superuser)
    return client


@pytest.fixture
def one_of_each(subscriber, clerk) -> dict:
    account = ServiceAccountFactory(subscriber=subscriber)
    bill = BillFactory(account=account)
    bill.lines.create(position=1, kind="fixed_fee", amount="50.000")
    return {
        "user": subscriber.user,
        "agency": subscriber.agency,
        "subscriber": subscriber,
        "plan": account.plan,
        "serviceaccount": account,
        "consumption": ConsumptionFactory(account=account),
        "bill": bill,
        "group": clerk.groups.first(),
        "sequence": Sequence.objects.get_or_create(name="account_number")[0],
        "billrun": _bill_run(),
        **_notification_rows(subscriber, account, bill),
    }


def _bill_run():
    import datetime as dt

    from billing.models import BillRun

    return BillRun.objects.create(period=dt.date(2026, 11, 1), issue_date=dt.date(2026, 12, 2))


def _notification_rows(subscriber, account, bill) -> dict:
    from billing.models import PrintRequest
    from billing.plan_changes import plan_change_request
    from billing.services import sms_alert_subscribe
    from billing.tests.factories import PlanFactory
    from notifications.models import DeliveryReport, Message
    from notifications.verification import channel_add

    channel = channel_add(subscriber=subscriber, kind="sms", address="20555111")
    message = Message.objects.get(channel=channel)
    return {
        "contactchannel": channel,
        "channelverification": channel.verifications.get(),
        "message": message,
        "deliveryreport": DeliveryReport.objects.create(
            provider="console", provider_message_id="x1", raw_status="Success", status="delivered"
        ),
        "smsalertsubscription": sms_alert_subscribe(account=account, started_on=bill.period),
        "printrequest": PrintRequest.objects.create(bill=bill, agency=subscriber.agency, requested_by=subscriber.user),
        "planchange": plan_change_request(account=account, to_plan=PlanFactory(), requested_by=subscriber.user),
        **_dunning_rows(account, bill),
    }


def _dunning_rows(account, bill) -> dict:
    """A bill 30 days late: its ladder records, its disconnection order, an exemption, a visit."""
    import datetime as dt

    from billing.appointments import appointment_schedule
    from billing.dunning import dunning_exemption_grant, dunning_run
    from billing.models import DunningLadderStep, DunningStep, FieldOrder

    dunning_run(today=bill.due_date + dt.timedelta(days=15))
    dunning_run(today=bill.due_date + dt.timedelta(days=30))
    staff = account.subscriber.agency.staff.first() or bill.account.subscriber.user
    return {
        "dunningladderstep": DunningLadderStep.objects.first(),
        "dunningstep": DunningStep.objects.filter(account=account).first(),
        "fieldorder": FieldOrder.objects.get(account=account),
        "overdueaccount": account,
        "dunningexemption": dunning_exemption_grant(
            account=account,
            reason="dispute",
            note="",
            starts_on=bill.due_date,
            ends_on=None,
            granted_by=staff,
            today=bill.due_date,
        ),
        "appointment": appointment_schedule(
            account=account,
            kind="meter_change",
            date=dt.date.today() + dt.timedelta(days=3),
            window_start=dt.time(8),
            window_end=dt.time(12),
            scheduled_by=staff,
        ),
    }


def test_every_model_admin_has_a_working_changelist_add_and_change_page(
    admin_client_: Client, one_of_each: dict
) -> None:
    checked = added = 0
    for model in admin.site._registry:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client_.get(changelist).status_code == 200, changelist
        add = admin_client_.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        # Rows only services write (bills, messages…) refuse the add page; every other one answers.
        assert add.status_code in (200, 403), meta.model_name
        added += add.status_code == 200
        obj = one_of_each.get(meta.model_name)
        if obj is None:
            continue
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        assert admin_client_.get(change).status_code == 200, change
        checked += 1
    assert checked == len(one_of_each)
    assert added >= 8  # users, agencies, subscribers, plans, accounts, channels, consumption, SMS alerts…


def _form_post_data(response) -> dict:
    """What a browser would send back from an admin change page, as rendered."""
    data: dict = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return data


def test_a_service_account_opened_in_the_back_office_gets_a_number_and_its_plans_kind(
    admin_client_: Client, subscriber
) -> None:
    from billing.models import ServiceAccount
    from billing.tests.factories import PlanFactory

    plan = PlanFactory(kind="water")
    response = admin_client_.post(
        reverse("admin:billing_serviceaccount_add"),
        {
            "subscriber": subscriber.pk, "plan": plan.pk, "billing_mode": "postpaid", "meter_number": "W-1",
            "service_address": "3 rue de Marseille, Tunis", "opened_on": "2026-11-01",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    account = ServiceAccount.objects.get(meter_number="W-1")
    assert account.kind == "water" and len(account.number) == 10 and account.subscriber == subscriber


def test_an_accounts_plan_cannot_be_changed_to_another_kind_of_service(admin_client_: Client, subscriber) -> None:
    from billing.tests.factories import PlanFactory

    account = ServiceAccountFactory(subscriber=subscriber)
    mobile = PlanFactory(kind="mobile", code="MOB-X")
    url = reverse("admin:billing_serviceaccount_change", args=[account.pk])
    data = {**_form_post_data(admin_client_.get(url)), "plan": str(mobile.pk)}
    response = admin_client_.post(url, data)
    assert response.status_code == 200 and "plan" in response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.plan != mobile


@pytest.mark.parametrize("typed", ["20 111 222", "+216 20 111 222", "alice@example.com", "Ben Salah"])
def test_a_clerk_finds_a_subscriber_by_phone_as_spoken_email_or_name(client: Client, clerk, subscriber, typed) -> None:
    client.force_login(clerk)
    response = client.get(reverse("admin:accounts_subscriber_changelist"), {"q": typed})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [subscriber]


def test_a_clerk_finds_a_bill_by_account_number_read_over_the_phone(client: Client, clerk, subscriber) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    BillFactory()  # somebody else's
    client.force_login(clerk)
    spoken = bill.account.display_number  # "100 090 0003"
    response = client.get(reverse("admin:billing_bill_changelist"), {"q": spoken})
    assert list(response.context["cl"].result_list) == [bill]


def test_bills_cannot_be_added_or_have_their_amounts_edited(admin_client_: Client, one_of_each: dict) -> None:
    bill = one_of_each["bill"]
    assert admin_client_.get(reverse("admin:billing_bill_add")).status_code == 403
    url = reverse("admin:billing_bill_change", args=[bill.pk])
    # The whole form as the page renders it, with amounts a clerk might try to
    # type: consistent with the database's rules, so only read-only fields stop them.
    data = _form_post_data(admin_client_.get(url))
    data.update({"amount_paid": "59.500", "amount_due": "0", "status": "paid", "lines-0-amount": "1.000"})
    response = admin_client_.post(url, data)
    assert response.status_code == 302  # the form saved: nothing was refused, the amounts were ignored
    bill.refresh_from_db()
    assert (str(bill.amount_paid), str(bill.amount_due), bill.status) == ("0.000", "59.500", "issued")
    assert str(bill.lines.get().amount) == "50.000"


def test_a_subscriber_cannot_open_the_back_office(client: Client, subscriber) -> None:
    client.force_login(subscriber.user)
    response = client.get(reverse("admin:billing_bill_changelist"))
    assert response.status_code == 302
