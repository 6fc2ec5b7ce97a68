"""Personas shared by every app's tests (healthchecks style):
Alice is `subscriber`, Bob is `other_subscriber` and must see nothing of hers;
`clerk` works at her agency, `other_agency_clerk` at another."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import Subscriber, User
from accounts.tests.factories import PASSWORD, AgencyFactory, SubscriberFactory, UserFactory
from billing.demo import _clerk_group


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
def password() -> str:
    return PASSWORD


@pytest.fixture
def subscriber(db) -> Subscriber:
    return SubscriberFactory(user__email="alice@example.com", user__phone="+21620111222", full_name="Alice Ben Salah")


@pytest.fixture
def other_subscriber(db) -> Subscriber:
    return SubscriberFactory(user__email="bob@example.com", user__phone="+21620333444", full_name="Bob Trabelsi")


@pytest.fixture
def clerk_group(db) -> Group:
    return _clerk_group()


@pytest.fixture
def clerk(db, subscriber, clerk_group) -> User:
    user = UserFactory(email="clerk@agency.example", is_staff=True, agency=subscriber.agency)
    user.groups.add(clerk_group)
    return user


@pytest.fixture
def other_agency_clerk(db, clerk_group) -> User:
    user = UserFactory(email="clerk@other.example", is_staff=True, agency=AgencyFactory())
    user.groups.add(clerk_group)
    return user


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
