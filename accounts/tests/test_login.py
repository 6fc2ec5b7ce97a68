from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "identifier", ["alice@example.com", "ALICE@Example.com", "20 111 222", "+216 20 111 222", "0021620111222"]
)
def test_subscriber_logs_in_with_email_or_any_spelling_of_her_phone(
    client: Client, subscriber: Subscriber, password: str, identifier: str
) -> None:
    response = client.post("/fr/login/", {"username": identifier, "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/fr/dashboard/"


def test_a_wrong_password_keeps_her_out_with_a_clear_message(client: Client, subscriber: Subscriber) -> None:
    response = client.post("/fr/login/", {"username": "alice@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert response.context["form"].non_field_errors()


def test_an_unknown_identifier_gets_the_same_answer_as_a_wrong_password(client: Client, subscriber) -> None:
    wrong = client.post("/en/login/", {"username": "alice@example.com", "password": "nope"})
    unknown = client.post("/en/login/", {"username": "nobody@example.com", "password": "nope"})
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()


def test_failed_logins_are_throttled_whatever_the_phone_spelling(
    client: Client, subscriber: Subscriber, password: str, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for spelling in ["20111222", "+216 20 111 222", "00216 20111222"]:
        client.post("/fr/login/", {"username": spelling, "password": "wrong"})
    # Now even the right password is refused for a while.
    response = client.post("/fr/login/", {"username": "20 111 222", "password": password})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another subscriber at another address is not locked out by Alice's attacker.
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert other.post("/fr/login/", {"username": "20111222", "password": password}).status_code == 302


def test_logout_ends_the_session(client: Client, subscriber: Subscriber) -> None:
    client.force_login(subscriber.user)
    assert client.post("/fr/logout/").status_code == 302
    assert client.get("/fr/dashboard/").status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(client: Client, subscriber: Subscriber) -> None:
    response = client.post("/fr/password-reset/", {"email": "Alice@example.com"})
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"https?://[^/]+(/fr/password-reset/\S+/)", message.body).group(1)

    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )
    assert response.status_code == 302
    login = Client().post("/fr/login/", {"username": "alice@example.com", "password": "a-new-long-passphrase"})
    assert login.status_code == 302


def test_password_reset_does_not_reveal_unknown_addresses(client: Client, subscriber) -> None:
    response = client.post("/fr/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/fr/password-reset/sent/"
    assert mail.outbox == []


def test_login_posts_need_the_csrf_token(subscriber: Subscriber, password: str) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/fr/login/", {"username": "alice@example.com", "password": password}).status_code == 403


def test_a_session_the_cache_lost_is_read_back_from_the_database(client, subscriber) -> None:
    import datetime as dt

    from django.contrib.sessions.models import Session
    from django.core.cache import cache
    from django.utils import timezone

    client.force_login(subscriber.user)
    cache.clear()  # Redis restarted: the session survives in PostgreSQL
    assert client.get("/fr/dashboard/").status_code == 200
    # An expired row is not a session: back to the login page.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    cache.clear()
    response = client.get("/fr/dashboard/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_one_address_spraying_one_password_over_many_accounts_is_stopped(client: Client, settings, password) -> None:
    from accounts.tests.factories import UserFactory

    settings.SELFCARE_LOGIN_FAILURES_PER_CLIENT = 30
    users = [UserFactory(email=f"user{i}@example.com") for i in range(31)]
    for user in users[:30]:
        assert client.post("/fr/login/", {"username": user.email, "password": "Summer2026!"}).status_code == 200
    # The 31st account, even with its right password, is refused from this address…
    response = client.post("/fr/login/", {"username": users[30].email, "password": password})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # …and the back office's login too; another address is not concerned.
    assert client.post("/fr/admin/login/", {"username": users[30].email, "password": password}).status_code == 429
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert other.post("/fr/login/", {"username": users[30].email, "password": password}).status_code == 302


def test_phone_and_email_failures_count_against_one_account(
    client: Client, subscriber: Subscriber, password: str, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 10
    for _ in range(5):
        client.post("/fr/login/", {"username": "20 111 222", "password": "wrong"})
    for _ in range(4):
        client.post("/fr/login/", {"username": "alice@example.com", "password": "wrong"})
    assert client.post("/fr/login/", {"username": "ALICE@example.com", "password": "wrong"}).status_code == 429
    # The tenth failure, half by phone and half by e-mail, locked the account at this address.
    assert client.post("/fr/login/", {"username": "+21620111222", "password": password}).status_code == 429
    assert client.post("/fr/login/", {"username": "alice@example.com", "password": password}).status_code == 429


def test_password_reset_mails_are_limited_per_address(client: Client, subscriber: Subscriber) -> None:
    for _ in range(10):
        response = client.post("/fr/password-reset/", {"email": "alice@example.com"})
        # Always the same neutral answer: it reveals neither the limit nor the account.
        assert response.status_code == 302 and response["Location"] == "/fr/password-reset/sent/"
    assert len(mail.outbox) == 3


def test_password_reset_mails_are_limited_per_client_address(client: Client) -> None:
    from accounts.tests.factories import UserFactory

    for i in range(12):
        UserFactory(email=f"user{i}@example.com")
        assert client.post("/fr/password-reset/", {"email": f"user{i}@example.com"}).status_code == 302
    assert len(mail.outbox) == 10
    # Another client still gets its mail.
    Client(REMOTE_ADDR="10.9.9.9").post("/fr/password-reset/", {"email": "user11@example.com"})
    assert len(mail.outbox) == 11
