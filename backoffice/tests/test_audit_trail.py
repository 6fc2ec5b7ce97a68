"""The audit trail: who changed what, when, from where, before and after; and
nobody can rewrite it from the application."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from accounts.models import ChannelKind, ContactChannel, Subscriber
from accounts.tests.factories import AgencyFactory, SubscriberFactory, UserFactory
from billing.models import Bill, PrintRequest
from billing.services import bills_flag_overdue, print_requests_mark_printed
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.audit import SYSTEM_ACTOR, audit_context, audit_saves, audit_system
from notifications import verification

pytestmark = pytest.mark.django_db


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk"))


def test_a_rename_in_the_admin_records_actor_address_and_before_after(client, superuser, subscriber):
    client.force_login(superuser)
    url = reverse("admin:accounts_subscriber_change", args=[subscriber.pk])
    form = {
        "user": subscriber.user_id,
        "full_name": "Alice Ben Salah-Trabelsi",
        "national_id": "",
        "preferred_language": "fr",
        "agency": subscriber.agency_id,
    }
    response = client.post(url, form, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = entries_for(subscriber)[-1]
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.actor == superuser
    assert entry.remote_addr == "192.0.2.7"
    assert entry.changes["full_name"] == ["Alice Ben Salah", "Alice Ben Salah-Trabelsi"]
    assert entry.additional_data["agency_id"] == subscriber.agency_id


def test_a_forged_forwarded_for_does_not_become_the_recorded_address(client, superuser, subscriber):
    # No proxy is configured (AXES_PROXY_COUNT): the socket's address is the client's.
    client.force_login(superuser)
    url = reverse("admin:accounts_subscriber_change", args=[subscriber.pk])
    form = {"user": subscriber.user_id, "full_name": "X", "preferred_language": "fr", "agency": subscriber.agency_id}
    client.post(url, form, REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.66")
    assert entries_for(subscriber)[-1].remote_addr == "192.0.2.7"


def test_the_password_hash_never_enters_the_trail(subscriber):
    subscriber.user.set_password("another-long-password")
    subscriber.user.save()
    for entry in entries_for(subscriber.user):
        assert "password" not in (entry.changes or {})
        assert "pbkdf2" not in str(entry.changes)


def test_a_service_write_is_recorded_with_its_actor(subscriber, clerk, monkeypatch):
    monkeypatch.setattr(verification, "_code_from_salt", lambda salt: "123456")
    with audit_context(actor=clerk):
        channel = verification.channel_add(
            subscriber=subscriber, kind=ChannelKind.SMS, address="20 999 888", registered_by=clerk
        )
        verification.channel_verify(channel=channel, code="123456", verified_by=clerk)
    entry = entries_for(channel)[-1]
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.actor == clerk
    assert entry.changes["verified_at"][0] in (None, "None")
    assert entry.changes["verified_at"][1] not in (None, "None")
    assert entry.additional_data == {"agency_id": subscriber.agency_id, "subscriber_id": subscriber.pk}
    # The code's hash is not in the trail of its verification.
    code_entries = LogEntry.objects.filter(content_type__model="channelverification")
    assert code_entries.exists()
    assert all(not {"code_hash", "salt"} & set(e.changes or {}) for e in code_entries)


def test_a_write_with_nobody_behind_it_names_the_system(subscriber):
    ContactChannel.objects.create(subscriber=subscriber, kind=ChannelKind.EMAIL, address="a@b.example", language="fr")
    entry = LogEntry.objects.filter(content_type__model="contactchannel").get()
    assert entry.actor is None and entry.actor_email == SYSTEM_ACTOR


def test_the_bulk_overdue_flag_is_recorded_per_bill(subscriber):
    account = ServiceAccountFactory(subscriber=subscriber)
    bill = BillFactory(account=account, period=dt.date(2026, 1, 1))
    assert bills_flag_overdue(today=bill.due_date + dt.timedelta(days=1)) == 1
    entry = entries_for(bill)[-1]
    assert entry.changes == {"status": ["issued", "overdue"]}
    assert entry.actor_email == SYSTEM_ACTOR
    assert entry.additional_data == {"agency_id": subscriber.agency_id, "subscriber_id": subscriber.pk}


def test_marking_copies_printed_is_recorded_with_the_clerk(subscriber, clerk):
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    request = PrintRequest.objects.create(bill=bill, agency=subscriber.agency)
    with audit_context(actor=clerk, remote_addr="10.0.0.9"):
        assert print_requests_mark_printed(requests=[request], printed_by=clerk) == 1
    entry = entries_for(request)[-1]
    assert (entry.actor, entry.remote_addr) == (clerk, "10.0.0.9")
    assert entry.changes["status"] == ["pending", "printed"]


def test_an_admin_action_is_recorded_per_object(client, superuser, subscriber):
    bills = [BillFactory(account=ServiceAccountFactory(subscriber=subscriber)) for _ in range(2)]
    client.force_login(superuser)
    response = client.post(
        reverse("admin:billing_bill_changelist"),
        {"action": "announce", "_selected_action": [b.pk for b in bills]},
        REMOTE_ADDR="192.0.2.8",
    )
    assert response.status_code == 302
    for bill in bills:
        entry = LogEntry.objects.get_for_object(bill).get(additional_data__admin_action="announce")
        assert (entry.actor, entry.remote_addr) == (superuser, "192.0.2.8")


@pytest.fixture
def an_entry(subscriber) -> LogEntry:
    subscriber.full_name = "Changed"
    subscriber.save()
    return entries_for(subscriber)[-1]


def test_nobody_edits_or_deletes_an_entry_not_even_a_superuser(client, superuser, an_entry):
    client.force_login(superuser)
    change = reverse("admin:auditlog_logentry_change", args=[an_entry.pk])
    delete = reverse("admin:auditlog_logentry_delete", args=[an_entry.pk])
    assert client.get(change).status_code == 200  # readable
    assert client.post(change, {"object_repr": "rewritten"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = client.post(
        reverse("admin:auditlog_logentry_changelist"), {"action": "delete_selected", "_selected_action": [an_entry.pk]}
    )
    assert response.status_code in (200, 302)
    an_entry.refresh_from_db()
    assert an_entry.object_repr != "rewritten"
    assert client.get(reverse("admin:auditlog_logentry_add")).status_code == 403


def test_a_supervisor_reads_their_agencys_entries_only(client, supervisor, subscriber, other_subscriber):
    for s in (subscriber, other_subscriber):
        s.full_name += " (edited)"
        s.save()
    client.force_login(supervisor)
    response = client.get(reverse("admin:auditlog_logentry_changelist"))
    assert response.status_code == 200
    shown = set(response.context["cl"].result_list.values_list("object_id", flat=True))
    assert subscriber.pk in shown and other_subscriber.pk not in shown
    other_entry = entries_for(other_subscriber)[-1]
    assert client.get(reverse("admin:auditlog_logentry_change", args=[other_entry.pk])).status_code in (302, 404)


def test_an_auditor_reads_every_agency_and_changes_nothing(client, auditor, subscriber, other_subscriber):
    for s in (subscriber, other_subscriber):
        s.full_name += " (edited)"
        s.save()
    client.force_login(auditor)
    response = client.get(reverse("admin:auditlog_logentry_changelist"))
    shown = set(response.context["cl"].result_list.values_list("object_id", flat=True))
    assert {subscriber.pk, other_subscriber.pk} <= shown
    entry = entries_for(other_subscriber)[-1]
    change = reverse("admin:auditlog_logentry_change", args=[entry.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"object_repr": "x"}).status_code == 403
    assert client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403


def test_the_trail_filters_by_staff_user_agency_object_and_date(client, superuser, clerk, subscriber):
    other = SubscriberFactory(agency=AgencyFactory())
    with audit_context(actor=clerk):
        subscriber.full_name = "By the clerk"
        subscriber.save()
    other.full_name = "By nobody"
    other.save()
    client.force_login(superuser)
    url = reverse("admin:auditlog_logentry_changelist")

    def shown(**params) -> set[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return {e.object_repr for e in response.context["cl"].result_list}

    assert shown(actor=clerk.pk) == {"By the clerk"}
    assert "By nobody" in shown(agency=other.agency_id) and "By the clerk" not in shown(agency=other.agency_id)
    ct = LogEntry.objects.get_for_object(other).first().content_type_id
    one_object = shown(resource_type=ct, object_id=other.pk)
    assert "By nobody" in one_object and "By the clerk" not in one_object
    today = LogEntry.objects.latest().timestamp.date()
    assert "By nobody" in shown(timestamp__gte=f"{today.isoformat()} 00:00:00+00:00")
    assert shown(timestamp__gte=f"{(today + dt.timedelta(days=2)).isoformat()} 00:00:00+00:00") == set()


def test_a_clerk_without_the_permission_cannot_read_the_trail(client, clerk):
    client.force_login(clerk)
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403


def test_entries_cannot_reach_another_agency_through_the_scope(subscriber):
    # The scope is taken from the row, not from who wrote it.
    moved = Subscriber.objects.get(pk=subscriber.pk)
    new_agency = AgencyFactory()
    moved.agency = new_agency
    moved.save()
    assert entries_for(moved)[-1].additional_data["agency_id"] == new_agency.id
    assert Bill.objects.count() == 0


def test_a_change_of_role_is_recorded(clerk):
    from django.contrib.auth.models import Group

    supervisors = Group.objects.create(name="Supervisors (test)")
    clerk.groups.add(supervisors)
    entry = LogEntry.objects.get_for_object(clerk).latest()
    assert entry.changes["groups"]["operation"] == "add"
    assert entry.changes["groups"]["objects"] == [str(supervisors)]


def test_audit_record_writes_one_entry_with_the_scope_and_the_actor(subscriber, clerk):
    from core.audit import audit_record

    with audit_context(actor=clerk, remote_addr="10.0.0.5"):
        entry = audit_record(
            instance=subscriber, action=LogEntry.Action.UPDATE, changes={"user": [1, 2]}, extra={"reason": "test"}
        )
    entry.refresh_from_db()
    assert (entry.actor, entry.remote_addr, entry.changes) == (clerk, "10.0.0.5", {"user": [1, 2]})
    assert entry.additional_data == {
        "agency_id": subscriber.agency_id,
        "subscriber_id": subscriber.pk,
        "reason": "test",
    }


def test_a_login_relink_is_audited_from_request_to_disabled_login(subscriber, clerk, supervisor):
    from billing.approvals import change_request_approve, subscriber_login_relink_request

    old_login = subscriber.user
    new_login = UserFactory(email="alice.new@example.com")
    with audit_context(actor=clerk, remote_addr="10.0.0.1"):
        request = subscriber_login_relink_request(
            subscriber=subscriber, new_login=new_login, reason="Lost her phone", requested_by=clerk
        )
    with audit_context(actor=supervisor, remote_addr="10.0.0.2"):
        change_request_approve(change_request=request, decided_by=supervisor)
    asked = entries_for(request)
    assert [(e.action, e.actor) for e in asked] == [
        (LogEntry.Action.CREATE, clerk),
        (LogEntry.Action.UPDATE, supervisor),
    ]
    assert asked[0].additional_data == {"agency_id": subscriber.agency_id, "subscriber_id": subscriber.pk}
    relinked = entries_for(subscriber)[-1]
    assert relinked.actor == supervisor and relinked.changes["user"] == [old_login.pk, new_login.pk]
    disabled = entries_for(old_login)[-1]
    assert disabled.changes == {"is_active": [True, False]}
    assert (disabled.actor, disabled.remote_addr) == (supervisor, "10.0.0.2")
    assert disabled.additional_data["agency_id"] == subscriber.agency_id


# audit_saves writes, for rows written without save(), what auditlog's signals
# write for a save(): compared field by field on the same row and the same change.
COMPARED = ("content_type_id", "object_pk", "object_id", "object_repr", "serialized_data", "action", "changes",
            "changes_text", "actor_id", "actor_email", "remote_addr", "remote_port", "additional_data", "cid")  # fmt: skip


def _compared(entry: LogEntry) -> dict:
    return {name: getattr(entry, name) for name in COMPARED}


def _contexts(clerk):
    return {
        "a clerk from an address": lambda: audit_context(actor=clerk, remote_addr="10.1.2.3"),
        "a named system job": lambda: audit_system("bench"),
        "nobody": contextlib.nullcontext,
    }


@pytest.mark.parametrize("who", ["a clerk from an address", "a named system job", "nobody"])
def test_audit_saves_records_an_update_as_auditlog_does(subscriber, clerk, who):
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber), period=dt.date(2026, 3, 1))
    fields = ["amount_paid", "amount_due", "status"]
    with _contexts(clerk)[who]():
        # given auditlog's own entry for a save()
        bill.set_amount_paid(Decimal("10.000"))
        bill.save(update_fields=fields)
        by_signal = entries_for(bill)[-1]
        # when the same change is written again without save(), through audit_saves
        Bill.objects.filter(pk=bill.pk).update(amount_paid=0, amount_due=bill.amount_total, status="issued")
        bill = Bill.objects.select_related("account__subscriber").get(pk=bill.pk)
        before = copy.copy(bill)
        bill.set_amount_paid(Decimal("10.000"))
        Bill.objects.bulk_update([bill], fields)
        assert audit_saves(updated=[(before, bill, fields)]) == 1
    ours = entries_for(bill)[-1]
    # then
    assert ours.pk != by_signal.pk
    assert _compared(ours) == _compared(by_signal)
    assert ours.changes["amount_paid"] == ["0.000", "10.000"]


@pytest.mark.parametrize("who", ["a clerk from an address", "a named system job", "nobody"])
def test_audit_saves_records_a_creation_as_auditlog_does(subscriber, clerk, who):
    with _contexts(clerk)[who]():
        channel = ContactChannel.objects.create(subscriber=subscriber, kind=ChannelKind.SMS, address="+21620555444",
                                                language="fr")  # fmt: skip
        by_signal = entries_for(channel)[-1]
        ContactChannel.objects.filter(pk=channel.pk).delete()  # a queryset delete: no entry of its own
        again = ContactChannel(pk=channel.pk, subscriber=subscriber, kind=ChannelKind.SMS, address="+21620555444",
                               language="fr")  # fmt: skip
        ContactChannel.objects.bulk_create([again])
        again.created_at = channel.created_at  # the one field that differs: a second row, a second instant
        assert audit_saves(created=[again]) == 1
    ours = entries_for(again)[-1]
    assert ours.pk != by_signal.pk
    assert ours.action == by_signal.action == LogEntry.Action.CREATE
    assert _compared(ours) == _compared(by_signal)


def test_audit_saves_skips_an_update_that_changes_nothing(subscriber):
    before = copy.copy(subscriber)
    assert audit_saves(updated=[(before, subscriber, ["full_name"])]) == 0


def test_a_payments_entries_hold_auditlogs_own_diff_of_each_row(subscriber, bank, clerk):
    # given a payment that pays one bill, part of another, and leaves credit
    from payments.models import Allocation, Payment
    from payments.services import payment_apply

    account = ServiceAccountFactory(subscriber=subscriber)
    bills = [BillFactory(account=account, period=dt.date(2026, m, 1)) for m in (1, 2)]
    amount = bills[0].amount_due + bills[1].amount_due + Decimal("5.000")
    before = {b.pk: copy.copy(Bill.objects.get(pk=b.pk)) for b in bills}
    with audit_context(actor=clerk, remote_addr="10.1.2.3"):
        payment = payment_apply(
            provider=bank, reference="AUDIT-1", account_number=account.number, amount=amount, currency="TND",
            paid_at=dt.datetime(2026, 12, 2, 14, tzinfo=dt.UTC),
        ).payment  # fmt: skip
    # then each entry's changes are what auditlog's model_instance_diff gives for that row
    from auditlog.diff import model_instance_diff

    def diff(old, new, fields=None):
        changes = model_instance_diff(old, new, fields_to_check=fields, use_json_for_changes=True)
        return {name: list(pair) for name, pair in (changes or {}).items()}

    created = [Payment.objects.get(pk=payment.pk), *Allocation.objects.filter(payment=payment)]
    for row in created:
        entry = entries_for(row)[-1]
        assert entry.action == LogEntry.Action.CREATE
        expected = diff(None, row)
        if "created_at" in expected:  # read back from the database, without the microseconds' exact text
            expected["created_at"] = entry.changes["created_at"]
        assert entry.changes == expected, type(row).__name__
        assert (entry.actor, entry.remote_addr) == (clerk, "10.1.2.3")
    for bill in bills:
        entry = entries_for(bill)[-1]
        assert entry.changes == diff(
            before[bill.pk], Bill.objects.get(pk=bill.pk), ["amount_paid", "amount_due", "status"]
        )
    account_entry = entries_for(account)[-1]
    assert account_entry.changes == {"credit": ["0.000", "5.000"]}
