"""A logged-in subscriber's login details and password change (issue 10)."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.password_validation import password_validators_help_texts
from django.test import Client
from django.utils import timezone, translation
from django.utils.html import escape

from accounts.models import ChannelKind, ContactChannel, Subscriber
from accounts.tests.factories import SubscriberFactory, UserFactory
from notifications.models import Message
from notifications.passwords import PASSWORD_CHANGED

pytestmark = pytest.mark.django_db

NEW = "a-new-long-passphrase"


def _change(client: Client, current: str, new1: str = NEW, new2: str | None = None, language: str = "fr"):
    return client.post(
        f"/{language}/login-details/password/",
        {"old_password": current, "new_password1": new1, "new_password2": new1 if new2 is None else new2},
    )


def _logs_in(password: str, username: str = "alice@example.com") -> bool:
    return Client().post("/fr/login/", {"username": username, "password": password}).status_code == 302


def _verified(subscriber: Subscriber, kind: str, address: str, language: str = "fr") -> ContactChannel:
    return ContactChannel.objects.create(
        subscriber=subscriber, kind=kind, address=address, language=language, verified_at=timezone.now()
    )


# --- Login details ---------------------------------------------------------------


def test_every_page_menu_leads_to_the_login_details(subscriber_client: Client) -> None:
    page = subscriber_client.get("/fr/dashboard/").content.decode()
    assert 'href="/fr/login-details/"' in page
    assert "Mes identifiants" in page


def test_the_login_details_show_how_she_logs_in_and_where_a_reset_code_would_go(
    subscriber_client: Client, subscriber: Subscriber
) -> None:
    page = subscriber_client.get("/en/login-details/").content.decode()
    assert "alice@example.com" in page
    assert "20\u00a0111\u00a0222" in page  # her login phone, as people here write it, never broken
    # Not yet a verified SMS channel: the page says so and where to verify it.
    assert "Not verified" in page and 'href="/en/contact/"' in page
    assert 'href="/en/login-details/password/"' in page

    _verified(subscriber, ChannelKind.SMS, "+21620111222")
    page = subscriber_client.get("/en/login-details/").content.decode()
    assert "Not verified" not in page
    assert "If you forget your password, we can send a code to this number." in page


def test_a_number_verified_for_whatsapp_only_does_not_count_as_receiving_sms_codes(
    subscriber_client: Client, subscriber: Subscriber
) -> None:
    _verified(subscriber, ChannelKind.WHATSAPP, "+21620111222")
    assert "Not verified" in subscriber_client.get("/en/login-details/").content.decode()


def test_the_login_details_need_a_login(client: Client) -> None:
    response = client.get("/fr/login-details/")
    assert response.status_code == 302 and "/fr/login/" in response["Location"]
    assert client.get("/fr/login-details/password/").status_code == 302


def test_staff_opening_the_portals_login_details_are_sent_to_the_back_office(client: Client, clerk) -> None:
    client.force_login(clerk)
    for path in ("/fr/login-details/", "/fr/login-details/password/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/fr/admin/"


# --- Changing the password ---------------------------------------------------------


def test_she_changes_her_password_and_stays_logged_in_while_her_other_sessions_end(
    subscriber: Subscriber, password: str
) -> None:
    phone = Client()
    phone.force_login(subscriber.user)
    laptop = Client()  # another device, logged in before the change
    laptop.force_login(subscriber.user)
    assert laptop.get("/fr/dashboard/").status_code == 200

    response = _change(phone, password)
    assert response.status_code == 302 and response["Location"] == "/fr/login-details/"
    page = phone.get("/fr/login-details/")
    assert page.status_code == 200
    assert "Votre mot de passe est modifié." in page.content.decode()
    assert phone.get("/fr/dashboard/").status_code == 200  # this session goes on
    # The other device is logged out.
    response = laptop.get("/fr/dashboard/")
    assert response.status_code == 302 and "/fr/login/" in response["Location"]
    assert _logs_in(NEW) and _logs_in(NEW, username="20 111 222")
    assert not _logs_in(password)


def test_a_wrong_current_password_changes_nothing(subscriber_client: Client, subscriber, password: str) -> None:
    response = _change(subscriber_client, "not-my-password", language="en")
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"] == [
        "Your current password is not right. Please type it again."
    ]
    assert _logs_in(password) and not _logs_in(NEW)
    assert not Message.objects.exists()


def test_new_passwords_that_differ_are_refused(subscriber_client: Client, password: str) -> None:
    response = _change(subscriber_client, password, NEW, NEW + "x", language="en")
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"] == ["The two password fields didn’t match."]
    assert _logs_in(password)


@pytest.mark.parametrize("weak", ["1234", "password", "12345678901", "alice.example"])
def test_the_password_rules_speak_arabic_on_an_arabic_page(subscriber_client: Client, password: str, weak) -> None:
    response = _change(subscriber_client, password, weak, language="ar")
    assert response.status_code == 200
    errors = response.context["form"].errors["new_password2"]
    assert errors
    for error in errors:
        assert re.search("[\u0600-\u06ff]", error), f"not Arabic: {error!r}"
        assert not re.search("[A-Za-zÀ-ÿ]{3,}", error), f"Latin words on an Arabic page: {error!r}"
    assert _logs_in(password)
    # The rules are on the page before anything is typed, in Arabic too.
    page = subscriber_client.get("/ar/login-details/password/").content.decode()
    with translation.override("ar"):
        rules = password_validators_help_texts()
    assert len(rules) == 4 and all(escape(rule) in page for rule in rules)
    assert all(re.search("[\u0600-\u06ff]", rule) for rule in rules)


def test_wrong_current_passwords_are_limited_as_failed_logins_are(
    subscriber_client: Client, subscriber, other_subscriber, password: str, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        _change(subscriber_client, "guess", language="en")
    # Now even the right one is refused for a while…
    response = _change(subscriber_client, password, language="en")
    assert response.context["form"].errors["old_password"] == [
        "Too many wrong passwords. Please try again in a few minutes."
    ]
    assert _logs_in(password)
    # …for her only: Bob changes his.
    bob = Client()
    bob.force_login(other_subscriber.user)
    assert _change(bob, password).status_code == 302


def test_the_change_needs_the_csrf_token(csrf_client: Client, password: str) -> None:
    assert _change(csrf_client, password).status_code == 403
    assert _logs_in(password)


def test_a_security_notice_goes_to_every_verified_channel_in_its_language(
    subscriber_client: Client, subscriber: Subscriber, password: str
) -> None:
    sms = _verified(subscriber, ChannelKind.SMS, "+21620111222", language="ar")
    email = _verified(subscriber, ChannelKind.EMAIL, "alice@example.com", language="fr")
    sms.wants_service = sms.wants_bills = sms.wants_reminders = False  # whatever her choices
    sms.save()
    ContactChannel.objects.create(
        subscriber=subscriber, kind=ChannelKind.WHATSAPP, address="+21698123456", language="fr"
    )

    _change(subscriber_client, password)

    notices = {m.channel_id: m for m in Message.objects.filter(event=PASSWORD_CHANGED.name)}
    assert set(notices) == {sms.pk, email.pk}  # not the unverified WhatsApp number
    today = timezone.localtime().strftime("%d/%m/%Y")
    assert "تم تغيير كلمة مرور" in notices[sms.pk].body and today in notices[sms.pk].body
    assert notices[email.pk].subject == "Votre mot de passe a été changé"
    # A security notice waits for no quiet hours.
    assert all(m.urgent for m in notices.values())


def test_bob_gets_no_notice_of_alices_change(subscriber_client: Client, other_subscriber, password: str) -> None:
    _verified(other_subscriber, ChannelKind.SMS, "+21620333444")
    _change(subscriber_client, password)
    assert not Message.objects.filter(subscriber=other_subscriber).exists()


def test_the_change_is_in_the_audit_trail_without_the_hash(subscriber_client: Client, subscriber, password) -> None:
    _change(subscriber_client, password)
    [entry] = LogEntry.objects.get_for_object(subscriber.user).filter(changes__has_key="password")
    assert entry.actor == subscriber.user
    assert entry.additional_data["via"] == "portal"
    assert entry.additional_data["subscriber_id"] == subscriber.pk  # on her Customer 360 page
    subscriber.user.refresh_from_db()
    assert subscriber.user.password not in str(entry.changes) and "pbkdf2" not in str(entry.changes)


def test_the_email_link_reset_sends_the_notice_too(client: Client, subscriber: Subscriber) -> None:
    from django.core import mail

    _verified(subscriber, ChannelKind.SMS, "+21620111222")
    client.post("/fr/password-reset/", {"email": "alice@example.com"})
    link = re.search(r"https?://[^/]+(/fr/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert _logs_in(NEW)
    assert Message.objects.filter(event=PASSWORD_CHANGED.name, subscriber=subscriber).count() == 1


def test_staff_get_no_subscriber_notice(db) -> None:
    from notifications.passwords import password_changed_notify

    staff = UserFactory(is_staff=True)
    assert password_changed_notify(user=staff) == 0
    # A subscriber without channels gets none either, and nothing fails.
    assert password_changed_notify(user=SubscriberFactory().user) == 0


@pytest.mark.parametrize("via", ["sms", "email", "portal"])
def test_a_new_password_lifts_the_lockout_the_old_one_earned(subscriber: Subscriber, settings, via: str) -> None:
    from accounts.services import user_password_set

    settings.AXES_FAILURE_LIMIT = 3
    for spelling in ["20111222", "alice@example.com", "+216 20 111 222"]:
        Client().post("/fr/login/", {"username": spelling, "password": "a-guess"})
    assert not _logs_in("a-guess")  # locked out: the right password would be refused too
    user_password_set(user=subscriber.user, password=NEW, via=via)
    assert _logs_in(NEW)
    assert _logs_in(NEW, username="+21620111222")


def test_wrong_passwords_sent_at_once_get_no_more_tries_than_one_by_one(subscriber: Subscriber, monkeypatch) -> None:
    import threading
    import time

    from accounts.models import User
    from accounts.services import TooManyWrongPasswords, WrongPassword, user_password_change

    checked = []
    real_check = User.check_password

    def slow_check(self, raw):  # the hash takes a while: the window a race needs
        checked.append(raw)
        time.sleep(0.2)
        return real_check(self, raw)

    monkeypatch.setattr(User, "check_password", slow_check)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            user_password_change(user=subscriber.user, current_password=f"guess-{i}", new_password=NEW)
        except (WrongPassword, TooManyWrongPasswords) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checked) == 5  # AXES_FAILURE_LIMIT guesses, however many arrive at once
    assert sorted(outcomes) == ["TooManyWrongPasswords"] * 7 + ["WrongPassword"] * 5
