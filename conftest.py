"""Personas shared by every app's tests (healthchecks style):
Alice is `subscriber`, Bob is `other_subscriber` and must see nothing of hers;
`clerk` and `supervisor` work at her agency, `other_agency_clerk` at another,
`auditor` reads every agency."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts import roles
from accounts.models import Subscriber, User
from accounts.tests.factories import PASSWORD, AgencyFactory, SubscriberFactory, UserFactory

# The browser tests' fixtures (chromium through Playwright, the seeded demo), for every app.
pytest_plugins = ["billing.tests.browser"]


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # SQLite proves nothing about locks, constraints under concurrency or
    # numeric precision: the suite runs on PostgreSQL, as `make test` sets up.
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise pytest.UsageError("The tests run on PostgreSQL: use `make test`, or set DATABASE_URL.")


@pytest.fixture(autouse=True)
def _plain_static_storage(settings) -> None:
    # Tests render pages without running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Sessions and throttling counters must not leak from one test into another.
    from django.core.cache import caches

    caches["default"].clear()


@pytest.fixture
def phone_providers(settings) -> None:
    """SMS and WhatsApp through real providers (the suite's default is the demo's
    console, which wakes nobody and so ignores quiet hours): what waits at night
    in production waits here too. Nothing is sent unless a test relays."""
    settings.SELFCARE_SMS_PROVIDER = "africastalking"
    settings.SELFCARE_WHATSAPP_PROVIDER = "whatsapp_cloud"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def subscriber(db) -> Subscriber:
    return SubscriberFactory(user__email="alice@example.com", user__phone="+21620111222", full_name="Alice Ben Salah")


@pytest.fixture
def other_subscriber(db) -> Subscriber:
    return SubscriberFactory(user__email="bob@example.com", user__phone="+21620333444", full_name="Bob Trabelsi")


def _staff(email: str, role: str, *agencies) -> User:  # type: ignore[no-untyped-def]
    # The groups of the data migration (accounts.roles), as on a real server; made
    # again the same way if a transactional test's flush emptied the table since.
    group = (
        Group.objects.filter(name=role).first()
        or roles.roles_sync(group_model=Group, permission_model=Permission)[role]
    )
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(group)
    user.agencies.add(*agencies)
    return user


@pytest.fixture
def clerk(db, subscriber) -> User:
    return _staff("clerk@agency.example", roles.CLERK, subscriber.agency)


@pytest.fixture
def other_agency_clerk(db) -> User:
    return _staff("clerk@other.example", roles.CLERK, AgencyFactory())


@pytest.fixture
def supervisor(db, subscriber) -> User:
    return _staff("supervisor@agency.example", roles.SUPERVISOR, subscriber.agency)


@pytest.fixture
def auditor(db) -> User:
    return _staff("auditor@example.com", roles.AUDITOR)


@pytest.fixture
def superuser(db) -> User:
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def subscriber_client(client: Client, subscriber: Subscriber) -> Client:
    client.force_login(subscriber.user)
    return client


@pytest.fixture
def csrf_client(subscriber: Subscriber) -> Client:
    """A client that enforces CSRF, as a browser session would meet it."""
    c = Client(enforce_csrf_checks=True)
    c.force_login(subscriber.user)
    return c


@pytest.fixture
def bank(db):
    """A bank that reports payments over the signed API (secret: payments.tests.factories.SECRET)."""
    from payments.tests.factories import ProviderFactory

    return ProviderFactory(name="Banque Zitouna", key_id="zitouna")


@pytest.fixture
def other_bank(db):
    from payments.tests.factories import ProviderFactory

    return ProviderFactory(name="Banque de l'Habitat", key_id="bh-bank")
