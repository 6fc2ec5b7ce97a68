from __future__ import annotations

import factory
from django.utils import timezone

from accounts.models import ChannelKind, ContactChannel
from accounts.tests.factories import SubscriberFactory


class VerifiedChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactChannel

    subscriber = factory.SubFactory(SubscriberFactory)
    kind = ChannelKind.SMS
    address = factory.Sequence(lambda n: f"+2162{n:07d}")
    language = "fr"
    verified_at = factory.LazyFunction(timezone.now)
