from __future__ import annotations

import factory
from django.contrib.auth.hashers import make_password

from accounts.models import Agency, Language, Subscriber, User

PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = make_password(PASSWORD)  # hashed once: PBKDF2 per user is slow


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"AG{n:03d}")
    name_ar = factory.Sequence(lambda n: f"الوكالة {n}")
    name_fr = factory.Sequence(lambda n: f"Agence {n}")
    city = "Tunis"
    address = "1 rue de Rome, Tunis"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    phone = factory.Sequence(lambda n: f"+2165{n:07d}")
    password = _PASSWORD_HASH


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    user = factory.SubFactory(UserFactory)
    full_name = factory.Sequence(lambda n: f"Abonné {n}")
    preferred_language = Language.FRENCH
    agency = factory.SubFactory(AgencyFactory)
