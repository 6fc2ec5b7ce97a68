"""Staff roles exist on every server (a data migration), and every admin action
says which permission it needs."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts import roles
from billing.tests.factories import BillFactory, ServiceAccountFactory
from notifications.models import Message

pytestmark = pytest.mark.django_db


def _names(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_the_migration_created_each_role_with_exactly_its_permissions() -> None:
    assert _names(Group.objects.get(name=roles.CLERK)) == set(roles.CLERK_PERMISSIONS)
    supervisor = set(roles.SUPERVISOR_PERMISSIONS) | set(roles.AUDIT_TRAIL_PERMISSIONS)
    assert _names(Group.objects.get(name=roles.SUPERVISOR)) == supervisor
    auditor = _names(Group.objects.get(name=roles.AUDITOR))
    assert {"accounts.view_subscriber", "billing.view_bill", "notifications.view_message"} <= auditor
    assert set(roles.AUDIT_TRAIL_PERMISSIONS) <= auditor
    assert all(".view_" in name for name in auditor)


def test_roles_reach_the_apps_whose_tables_come_after_their_migration() -> None:
    # accounts.0004 runs before payments' tables exist on a fresh database: the
    # sync after `migrate` (accounts.apps) grants what it could not.
    auditor = _names(Group.objects.get(name=roles.AUDITOR))
    assert {"payments.view_payment", "payments.view_provider", "accounts.view_agencyhoursreduction"} <= auditor
    assert "payments.view_payment" in _names(Group.objects.get(name=roles.CLERK))
    supervisor = _names(Group.objects.get(name=roles.SUPERVISOR))
    assert {"accounts.change_agency", "accounts.add_agencyhoursreduction"} <= supervisor


def test_a_strict_sync_refuses_a_permission_that_does_not_exist(monkeypatch) -> None:
    from django.contrib.auth.models import Permission

    monkeypatch.setattr(roles, "CLERK_PERMISSIONS", (*roles.CLERK_PERMISSIONS, "billing.view_typo"))
    with pytest.raises(LookupError, match="view_typo"):
        roles.roles_sync(group_model=Group, permission_model=Permission)


def test_a_clerk_approves_nothing_and_sends_nothing() -> None:
    clerk = set(roles.CLERK_PERMISSIONS)
    assert not clerk & {"billing.approve_changerequest", "billing.announce_bill", "notifications.resend_message"}
    assert not any(name.startswith(("accounts.change_user", "accounts.add_user")) for name in clerk)


def test_every_admin_action_declares_the_permissions_it_needs() -> None:
    for model_admin in admin.site._registry.values():
        for func, name, _description in model_admin._get_base_actions():
            assert getattr(func, "allowed_permissions", None), f"{type(model_admin).__name__}.{name}"


def _failed_message(subscriber) -> Message:
    from notifications.verification import channel_add

    channel = channel_add(subscriber=subscriber, kind="sms", address="20555111")
    message = Message.objects.get(channel=channel)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED, last_error="gateway down")
    return message


def test_a_clerk_cannot_resend_or_announce(client: Client, clerk, subscriber) -> None:
    message = _failed_message(subscriber)
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(clerk)
    changelist = reverse("admin:notifications_message_changelist")
    action_form = client.get(changelist).context["action_form"]  # None: no action at all
    assert action_form is None or "resend" not in dict(action_form.fields["action"].choices)
    client.post(changelist, {"action": "resend", "_selected_action": [message.pk]})
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    before = Message.objects.count()
    client.post(reverse("admin:billing_bill_changelist"), {"action": "announce", "_selected_action": [bill.pk]})
    assert Message.objects.count() == before


def test_a_supervisor_resends_a_failed_message(client: Client, supervisor, subscriber) -> None:
    message = _failed_message(subscriber)
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:notifications_message_changelist"), {"action": "resend", "_selected_action": [message.pk]}
    )
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING


def test_the_demo_has_one_login_per_role(client: Client) -> None:
    from billing.demo import DEMO_PASSWORD, demo_logins, demo_seed

    demo_seed(subscribers=3, months=1)
    printed = " ".join(login for login, _role in demo_logins())
    for email, role in [
        ("clerk@example.com", roles.CLERK), ("supervisor@example.com", roles.SUPERVISOR),
        ("auditor@example.com", roles.AUDITOR),
    ]:  # fmt: skip
        assert email in printed
        c = Client()
        assert c.post("/fr/admin/login/", {"username": email, "password": DEMO_PASSWORD}).status_code == 302
        assert c.get(reverse("admin:accounts_subscriber_changelist")).status_code == 200, email
        assert Group.objects.get(name=role).user_set.filter(email=email).exists()
