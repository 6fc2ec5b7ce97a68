"""The Messages page (issue 10): its empty state speaks to what the subscriber has."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ChannelKind, Subscriber

from .factories import VerifiedChannelFactory

pytestmark = pytest.mark.django_db

# The sentence that asks for a number, in each language.
ASKS = {"en": "Add a phone number", "fr": "Ajoutez un numéro", "ar": "أضف رقم هاتف"}


def test_empty_messages_page_asks_for_a_number_when_none_is_verified(subscriber_client: Client) -> None:
    for language, asks in ASKS.items():
        assert asks in subscriber_client.get(f"/{language}/messages/").content.decode()


def test_empty_messages_page_does_not_ask_for_a_number_of_a_subscriber_who_has_two(
    subscriber_client: Client, subscriber: Subscriber
) -> None:
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.SMS, address="+21620111222")
    VerifiedChannelFactory(subscriber=subscriber, kind=ChannelKind.WHATSAPP, address="+21620111222")
    for language, asks in ASKS.items():
        body = subscriber_client.get(f"/{language}/messages/").content.decode()
        assert asks not in body
    assert "verified numbers" in subscriber_client.get("/en/messages/").content.decode()
