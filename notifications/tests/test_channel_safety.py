"""Codes staff cannot read, and channels that receive nothing once removed or unverified."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.test import Client

from accounts.models import ChannelKind, ContactChannel
from accounts.services import channel_remove
from billing.messages import bill_announce
from billing.tests.factories import BillFactory, ServiceAccountFactory
from notifications import relay, verification
from notifications.channels import registry
from notifications.models import Message

from . import fakes
from .factories import VerifiedChannelFactory

sms_gateway = fakes.sms_gateway

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings) -> None:
    # The outcome must not depend on when the suite runs.
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))


def _row_text(message: Message) -> str:
    """Everything stored on the row, every field."""
    values = Message.objects.filter(pk=message.pk).values().get()
    return json.dumps(values, default=str)


def _send_all() -> dict[str, int]:
    return relay.messages_send(relay.outbox_claim(limit=100))


@pytest.mark.parametrize("kind,address", [("sms", "20 555 111"), ("whatsapp", "20 555 111"), ("email", "a@b.example")])
def test_a_code_is_in_no_outbox_row_nor_admin_page_but_reaches_the_provider(
    subscriber, superuser, capsys, kind: str, address: str
) -> None:
    channel = verification.channel_add(subscriber=subscriber, kind=kind, address=address)
    message = Message.objects.get(channel=channel)
    code = verification.verification_codes_fill([message])[message.pk]
    assert code and len(code) == 6
    # given a code was requested, then no field of its outbox row holds it…
    assert code not in _row_text(message)
    assert "******" in message.body
    # …nor the back office's pages about it.
    staff = Client()
    staff.force_login(superuser)
    for url in [
        "/fr/admin/notifications/message/",
        f"/fr/admin/notifications/message/{message.pk}/change/",
        "/fr/admin/accounts/channelverification/",
        f"/fr/admin/accounts/channelverification/{channel.verifications.get().pk}/change/",
    ]:
        page = staff.get(url)
        assert page.status_code == 200 and code not in page.content.decode(), url
    # The provider (the console one for SMS and WhatsApp, Django's mail for e-mail)
    # gets the code, and the row still does not hold it.
    capsys.readouterr()
    assert _send_all()["sent"] == 1
    assert code in (mail.outbox[0].body if kind == "email" else capsys.readouterr().out)
    assert code not in _row_text(message)


def test_an_sms_gateway_receives_the_code(subscriber, settings, sms_gateway) -> None:
    settings.SELFCARE_SMS_PROVIDER = "africastalking"
    settings.AFRICASTALKING_URL = sms_gateway.send_url
    settings.AFRICASTALKING_API_KEY = fakes.SMS_API_KEY
    settings.AFRICASTALKING_USERNAME = fakes.SMS_USERNAME
    registry.reset()
    channel = verification.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    message = Message.objects.get(channel=channel)
    code = verification.verification_codes_fill([message])[message.pk]
    try:
        assert _send_all()["sent"] == 1
    finally:
        registry.reset()
    [sent] = sms_gateway.messages()
    assert code in sent["message"]


def test_a_code_replaced_by_a_newer_one_is_not_sent(subscriber, capsys) -> None:
    channel = verification.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    verification.channel_code_send(channel=channel)
    first, _second = Message.objects.filter(channel=channel).order_by("pk")
    capsys.readouterr()
    assert _send_all() == {"sent": 1, "retry": 0, "failed": 0, "skipped": 0, "cancelled": 1}
    first.refresh_from_db()
    assert first.status == Message.Status.CANCELLED and "no longer valid" in first.last_error


def test_removing_a_channel_cancels_what_was_queued_for_it(subscriber) -> None:
    channel = VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    other = VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.EMAIL, address="alice@example.com")
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    queued = Message.objects.get(channel=channel)

    channel_remove(channel=channel)

    queued.refresh_from_db()
    assert queued.status == Message.Status.CANCELLED and queued.last_error == "The channel was removed."
    assert Message.objects.get(channel=other).status == Message.Status.PENDING
    assert _send_all()["sent"] == 1  # only the e-mail


def test_a_channel_removed_from_the_admin_gets_nothing_either(subscriber, superuser) -> None:
    channel = VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    staff = Client()
    staff.force_login(superuser)
    staff.post(f"/fr/admin/accounts/contactchannel/{channel.pk}/delete/", {"post": "yes"})
    assert not ContactChannel.objects.exists()
    assert Message.objects.get().status == Message.Status.CANCELLED


def test_the_relay_sends_nothing_to_a_channel_unverified_behind_its_back(subscriber, capsys) -> None:
    channel = VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS)
    bill_announce(bill=BillFactory(account=ServiceAccountFactory(subscriber=subscriber)))
    # A bulk write that sends no signal: only the relay's own check can see it.
    ContactChannel.objects.filter(pk=channel.pk).update(verified_at=None)
    capsys.readouterr()

    counts = _send_all()

    assert counts["sent"] == 0 and counts["cancelled"] == 1
    assert channel.address not in capsys.readouterr().out
    message = Message.objects.get()
    assert message.status == Message.Status.CANCELLED and "no longer verified" in message.last_error


def test_the_code_still_goes_to_the_unverified_channel_it_verifies(subscriber, capsys) -> None:
    verification.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    assert _send_all()["sent"] == 1
