from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ChannelVerification, ContactChannel
from accounts.services import InvalidAddress
from billing.messages import bill_announce
from notifications import verification as services
from notifications.models import Message
from notifications.verification import VERIFICATION_CODE

pytestmark = pytest.mark.django_db


def _last_code(channel: ContactChannel) -> str:
    """The code as the subscriber would read it: what the relay fills in at send time
    (the outbox row itself holds `******`)."""
    message = Message.objects.filter(channel=channel, event=VERIFICATION_CODE.name).latest("created_at")
    return services.verification_codes_fill([message])[message.pk]


def test_adding_a_number_sends_a_six_digit_code_to_it_and_stores_only_a_hash(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20 555 111")
    assert channel.address == "+21620555111" and not channel.is_verified
    code = _last_code(channel)
    verification = channel.verifications.get()
    assert code not in verification.code_hash and len(verification.code_hash) == 64
    validity = verification.expires_at - verification.created_at
    assert abs(validity - dt.timedelta(minutes=10)) < dt.timedelta(seconds=5)


def test_the_right_code_verifies_once_and_only_once(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="+216 20 555 111")
    code = _last_code(channel)
    services.channel_verify(channel=channel, code=code)
    channel.refresh_from_db()
    assert channel.is_verified
    with pytest.raises(services.CodeRejected):
        services.channel_verify(channel=channel, code=code)


def test_a_code_expires_after_ten_minutes(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="email", address="Alice@Example.com")
    assert channel.address == "alice@example.com"
    code = _last_code(channel)
    ChannelVerification.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(services.CodeRejected):
        services.channel_verify(channel=channel, code=code)


def test_five_wrong_codes_void_it_even_for_the_right_one_after(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    code = _last_code(channel)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(services.CodeRejected):
            services.channel_verify(channel=channel, code=wrong)
    with pytest.raises(services.CodeRejected):
        services.channel_verify(channel=channel, code=code)
    assert channel.verifications.get().status == ChannelVerification.Status.VOID


def test_at_most_three_codes_per_address_an_hour_for_one_subscriber(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    services.channel_code_send(channel=channel)
    services.channel_code_send(channel=channel)
    with pytest.raises(services.TooManyCodes):
        services.channel_code_send(channel=channel)
    assert ChannelVerification.objects.filter(address="+21620555111").count() == 3


def test_nobody_can_use_up_another_persons_number(subscriber, other_subscriber) -> None:
    # Bob asks for codes to Alice's number until he is refused…
    bobs = services.channel_add(subscriber=other_subscriber, kind="sms", address="+21620555111")
    with pytest.raises(services.TooManyCodes):
        for _ in range(5):
            services.channel_code_send(channel=bobs)
    # …and Alice still gets hers.
    alices = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    assert alices.verifications.filter(status=ChannelVerification.Status.PENDING).exists()


def test_codes_are_limited_per_subscriber_across_numbers(subscriber, settings) -> None:
    settings.SELFCARE_CODES_PER_SUBSCRIBER = 5
    for n in range(5):
        services.channel_add(subscriber=subscriber, kind="sms", address=f"+2162055510{n}")
    # A sixth number (a premium destination, say) gets nothing, and removing numbers does not help.
    ContactChannel.objects.filter(subscriber=subscriber).delete()
    with pytest.raises(services.TooManyCodes):
        services.channel_add(subscriber=subscriber, kind="sms", address="+21620555109")
    codes = Message.objects.filter(event=VERIFICATION_CODE.name)
    assert codes.count() == 5 and not codes.exclude(status=Message.Status.CANCELLED).exists()


def test_codes_are_limited_per_client_address_across_subscribers(client: Client, settings) -> None:
    from accounts.tests.factories import SubscriberFactory

    settings.SELFCARE_CODES_PER_CLIENT = 10
    sent = 0
    for n in range(12):
        client.force_login(SubscriberFactory().user)
        client.post(
            reverse("notifications:channels"), {"kind": "sms", "address": f"+216205551{n:02d}", "language": "fr"}
        )
        sent = ChannelVerification.objects.count()
    assert sent == 10
    # The refusal is said in the form.
    response = client.post("/en/contact/", {"kind": "sms", "address": "+21620555199", "language": "fr"})
    assert response.status_code == 200
    assert "Too many codes" in " ".join(response.context["form"].non_field_errors())


@pytest.mark.parametrize("address", ["+33 6 12 34 56 78", "+213 551 23 45 67", "+44 7911 123456"])
def test_numbers_outside_the_operators_country_are_refused_with_a_clear_error(
    client: Client, subscriber, address: str
) -> None:
    client.force_login(subscriber.user)
    response = client.post("/en/contact/", {"kind": "sms", "address": address, "language": "en"})
    assert response.status_code == 200
    assert "We can only send messages to numbers from: Tunisia." in response.context["form"].errors["address"]
    assert not ContactChannel.objects.exists()
    assert not Message.objects.exists()


def test_other_countries_can_be_allowed(subscriber, settings) -> None:
    settings.SELFCARE_PHONE_REGIONS_ALLOWED = ["DZ"]
    channel = services.channel_add(subscriber=subscriber, kind="whatsapp", address="+213 551 23 45 67")
    assert channel.address == "+213551234567"
    with pytest.raises(InvalidAddress):
        services.channel_add(subscriber=subscriber, kind="sms", address="+33 6 12 34 56 78")


def test_a_new_code_voids_the_previous_one(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    first = _last_code(channel)
    services.channel_code_send(channel=channel)
    second = _last_code(channel)
    if first != second:
        with pytest.raises(services.CodeRejected):
            services.channel_verify(channel=channel, code=first)
    services.channel_verify(channel=channel, code=second)


def test_a_code_typed_with_arabic_digits_is_accepted(subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    code = _last_code(channel)
    arabic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    services.channel_verify(channel=channel, code=arabic)


@pytest.mark.parametrize(("kind", "address"), [("sms", "71 123 456"), ("whatsapp", "hello"), ("email", "not-an-email")])
def test_addresses_that_cannot_receive_are_refused_clearly(subscriber, kind: str, address: str) -> None:
    with pytest.raises(InvalidAddress):
        services.channel_add(subscriber=subscriber, kind=kind, address=address)


def test_an_unverified_channel_receives_nothing_but_its_code(subscriber) -> None:
    from billing.tests.factories import BillFactory, ServiceAccountFactory

    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    assert bill_announce(bill=bill) == 0
    assert list(Message.objects.filter(channel=channel).values_list("event", flat=True)) == [VERIFICATION_CODE.name]


def test_the_pages_answer_the_same_whoever_else_uses_the_address(client: Client, subscriber, other_subscriber) -> None:
    services.channel_add(subscriber=other_subscriber, kind="sms", address="20555111")
    client.force_login(subscriber.user)
    response = client.post(reverse("notifications:channels"), {"kind": "sms", "address": "20555111", "language": "ar"})
    channel = ContactChannel.objects.get(subscriber=subscriber)
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:channel_verify", args=[channel.pk])
    assert channel.language == "ar"


def test_a_subscriber_verifies_through_the_page(client: Client, subscriber) -> None:
    client.force_login(subscriber.user)
    client.post(reverse("notifications:channels"), {"kind": "whatsapp", "address": "+216 98 123 456", "language": "fr"})
    channel = ContactChannel.objects.get(subscriber=subscriber)
    wrong = client.post(reverse("notifications:channel_verify", args=[channel.pk]), {"code": "12"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    right = client.post(reverse("notifications:channel_verify", args=[channel.pk]), {"code": _last_code(channel)})
    assert right.status_code == 302
    channel.refresh_from_db()
    assert channel.is_verified


def test_bob_cannot_see_verify_edit_or_remove_alices_channel(client: Client, subscriber, other_subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    client.force_login(other_subscriber.user)
    for name in ("channel_verify", "channel_edit"):
        assert client.get(reverse(f"notifications:{name}", args=[channel.pk])).status_code == 404
    for name in ("channel_resend", "channel_remove"):
        assert client.post(reverse(f"notifications:{name}", args=[channel.pk])).status_code == 404
    assert ContactChannel.objects.filter(pk=channel.pk).exists()
    assert "+21620555111" not in client.get(reverse("notifications:channels")).content.decode()


def test_channel_posts_need_the_csrf_token(csrf_client: Client, subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    assert (
        csrf_client.post(
            reverse("notifications:channels"), {"kind": "sms", "address": "20555222", "language": "fr"}
        ).status_code
        == 403
    )
    assert csrf_client.post(reverse("notifications:channel_remove", args=[channel.pk])).status_code == 403
    assert csrf_client.post(reverse("notifications:paperless"), {"paperless": "1"}).status_code == 403


def test_preferences_are_saved_and_offers_are_off_by_default(client: Client, subscriber) -> None:
    channel = services.channel_add(subscriber=subscriber, kind="email", address="alice@example.com")
    assert channel.wants_bills and channel.wants_reminders and not channel.wants_offers
    client.force_login(subscriber.user)
    client.post(reverse("notifications:channel_edit", args=[channel.pk]), {"language": "ar", "wants_bills": "on"})
    channel.refresh_from_db()
    assert (channel.language, channel.wants_bills, channel.wants_reminders) == ("ar", True, False)


def test_paperless_needs_a_verified_channel_and_ends_with_the_last_one(client: Client, subscriber) -> None:
    client.force_login(subscriber.user)
    client.post(reverse("notifications:paperless"), {"paperless": "1"})
    subscriber.refresh_from_db()
    assert not subscriber.paperless
    channel = services.channel_add(subscriber=subscriber, kind="sms", address="20555111")
    services.channel_verify(channel=channel, code=_last_code(channel))
    client.post(reverse("notifications:paperless"), {"paperless": "1"})
    subscriber.refresh_from_db()
    assert subscriber.paperless
    client.post(reverse("notifications:channel_remove", args=[channel.pk]))
    subscriber.refresh_from_db()
    assert not subscriber.paperless


def test_a_clerk_registers_and_verifies_a_channel_at_the_counter(client: Client, clerk, subscriber) -> None:
    from django.contrib.admin.models import LogEntry

    client.force_login(clerk)
    add = client.post(
        reverse("admin:accounts_contactchannel_add"),
        {"subscriber": subscriber.pk, "kind": "sms", "address": "20 555 111", "language": "ar", "wants_bills": "on"},
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    channel = ContactChannel.objects.get(subscriber=subscriber)
    assert channel.registered_by == clerk and channel.address == "+21620555111"
    change = reverse("admin:accounts_contactchannel_change", args=[channel.pk])
    data = {"language": "ar", "wants_bills": "on", "code": _last_code(channel)}
    assert client.post(change, data).status_code == 302
    channel.refresh_from_db()
    assert channel.is_verified
    assert LogEntry.objects.filter(user=clerk, object_id=str(channel.pk)).count() == 2
