"""A forgotten password reset by a code sent by SMS to the login phone (issue 10).

Alice logs in with +216 20 111 222; the code goes there only once it is a
verified SMS channel of hers. Whatever is typed, the pages answer the same, so
they tell a stranger nothing about which numbers have an account.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ChannelKind, ChannelVerification, ContactChannel, Subscriber
from accounts.tests.factories import SubscriberFactory, UserFactory
from notifications import passwords, verification
from notifications.events import SECRET_MASK
from notifications.models import Message
from notifications.passwords import PASSWORD_CHANGED, PASSWORD_RESET_CODE

pytestmark = pytest.mark.django_db

ALICE_PHONE = "+21620111222"
NEW = "a-new-long-passphrase"
START, CODE_PAGE, RESEND, DONE = (
    "/fr/password-reset/sms/",
    "/fr/password-reset/sms-code/",
    "/fr/password-reset/sms-resend/",
    "/fr/password-reset/done/",
)
NEUTRAL = "Ce code n’est pas le bon ou n’est plus valable. Vérifiez-le, ou demandez-en un nouveau."
LOCKED = "Trop de codes erronés. Veuillez réessayer dans une heure."


@pytest.fixture
def alice_sms(subscriber: Subscriber) -> ContactChannel:
    """Alice's login phone, verified as an SMS channel."""
    return _verified(subscriber, ALICE_PHONE)


def _verified(subscriber: Subscriber, address: str, kind: str = ChannelKind.SMS) -> ContactChannel:
    return ContactChannel.objects.create(
        subscriber=subscriber, kind=kind, address=address, language="fr", verified_at=timezone.now()
    )


def _codes() -> list[Message]:
    return list(Message.objects.filter(event=PASSWORD_RESET_CODE.name).order_by("created_at", "pk"))


def _last_code() -> str:
    """The code as the SMS carries it: filled in by the relay (the row holds ******)."""
    message = _codes()[-1]
    return verification.verification_codes_fill([message])[message.pk]


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def _ask(client: Client, phone: str):
    return client.post(START, {"phone": phone})


def _enter(client: Client, code: str, new1: str = NEW, new2: str | None = None):
    return client.post(CODE_PAGE, {"code": code, "new_password1": new1, "new_password2": new2 or new1})


def _logs_in(password: str, username: str = "alice@example.com") -> bool:
    return Client().post("/fr/login/", {"username": username, "password": password}).status_code == 302


def _code_error(response) -> list[str]:
    assert response.status_code == 200
    return response.context["form"].errors.get("code", [])


@pytest.mark.parametrize("spelling", ["20 111 222", "+216 20 111 222", "00216-20-111-222", "٢٠ ١١١ ٢٢٢"])
def test_any_spelling_of_her_verified_login_phone_gets_a_code_that_sets_a_new_password(
    client: Client, alice_sms, password: str, spelling: str
) -> None:
    response = _ask(client, spelling)
    assert response.status_code == 302 and response["Location"] == CODE_PAGE
    [sms] = _codes()
    assert (sms.channel_id, sms.address, sms.channel_kind) == (alice_sms.pk, ALICE_PHONE, ChannelKind.SMS)
    assert SECRET_MASK in sms.body  # the outbox never holds the code itself
    assert sms.urgent
    code = _last_code()
    assert re.fullmatch(r"\d{6}", code) and code not in sms.body

    response = _enter(client, code)
    assert response.status_code == 302 and response["Location"] == DONE
    assert _logs_in(NEW) and _logs_in(NEW, username="20111222") and not _logs_in(password)
    assert ChannelVerification.objects.get().status == ChannelVerification.Status.USED
    # She is told her password changed, as after any change.
    assert Message.objects.filter(event=PASSWORD_CHANGED.name, channel=alice_sms).exists()


def test_the_forgotten_password_page_offers_the_sms_code_first(client: Client) -> None:
    page = client.get("/ar/password-reset/").content.decode()
    assert 'action="/ar/password-reset/sms/"' in page and 'type="tel"' in page
    assert page.index('name="phone"') < page.index('name="email"')


def _same_page(response) -> str:
    """A page's words, without what differs by design: the CSRF token and the number typed back."""
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return re.sub(r"<bdi class=\"tel\" dir=\"ltr\">[^<]*</bdi>", "", text)


def test_a_number_of_nobody_gets_the_very_same_answers(alice_sms, password: str) -> None:
    known, unknown = Client(), Client()
    a, b = _ask(known, "20 111 222"), _ask(unknown, "20 999 999")
    assert (a.status_code, a["Location"]) == (b.status_code, b["Location"])
    assert _same_page(known.get(CODE_PAGE)) == _same_page(unknown.get(CODE_PAGE))
    code = _last_code()
    # Wrong codes: the same words for both, up to the lock, which comes at the same entry.
    for attempt in range(passwords.OTP_MAX_WRONG):
        errors = _code_error(_enter(known, _wrong(code))), _code_error(_enter(unknown, _wrong(code)))
        expected = LOCKED if attempt == passwords.OTP_MAX_WRONG - 1 else NEUTRAL
        assert errors == ([expected], [expected])
    assert _same_page(known.post(RESEND, follow=True)) == _same_page(unknown.post(RESEND, follow=True))
    assert len(_codes()) == 1  # only the known number ever got a code
    assert _logs_in(password)


def test_a_phone_that_cannot_be_a_number_is_asked_again(client: Client) -> None:
    response = _ask(client, "twenty")
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "Saisissez le numéro de téléphone avec lequel vous vous connectez, par exemple 20 000 001."
    ]
    assert client.get(CODE_PAGE)["Location"] == START  # no number, no code page


def test_no_code_to_a_login_phone_not_verified_as_an_sms_channel(client: Client, subscriber) -> None:
    # Unverified, or verified for WhatsApp only: a code goes only where SMS codes were proven to arrive.
    ContactChannel.objects.create(subscriber=subscriber, kind=ChannelKind.SMS, address=ALICE_PHONE, language="fr")
    _verified(subscriber, ALICE_PHONE, kind=ChannelKind.WHATSAPP)
    assert _ask(client, "20 111 222")["Location"] == CODE_PAGE
    assert _codes() == []


def test_no_code_to_a_verified_number_she_does_not_log_in_with(client: Client, subscriber) -> None:
    _verified(subscriber, "+21698123456")
    _ask(client, "98 123 456")
    assert _codes() == []


def test_a_family_phone_resets_only_the_account_that_logs_in_with_it(
    client: Client, subscriber, other_subscriber, alice_sms, password: str
) -> None:
    # Bob receives his messages on Alice's phone too; it is her login, not his.
    _verified(other_subscriber, ALICE_PHONE)
    _ask(client, ALICE_PHONE)
    [sms] = _codes()
    assert sms.subscriber_id == subscriber.pk
    _enter(client, _last_code())
    assert _logs_in(NEW) and _logs_in(password, username="bob@example.com")


@pytest.mark.parametrize(
    "user_kwargs", [{"is_staff": True}, {"is_superuser": True}, {"is_active": False}], ids=["staff", "superuser", "off"]
)
def test_staff_and_disabled_accounts_are_never_reset_by_sms(client: Client, password: str, user_kwargs) -> None:
    user = UserFactory(email="someone@example.com", phone="+21620777888", **user_kwargs)
    _verified(SubscriberFactory(user=user), "+21620777888")
    assert _ask(client, "20 777 888")["Location"] == CODE_PAGE
    assert _codes() == []
    assert not ChannelVerification.objects.exists()


def test_a_code_for_an_account_turned_staff_since_is_refused(client: Client, alice_sms, subscriber, password) -> None:
    _ask(client, ALICE_PHONE)
    type(subscriber.user).objects.filter(pk=subscriber.user_id).update(is_staff=True)
    assert _code_error(_enter(client, _last_code())) == [NEUTRAL]
    subscriber.user.refresh_from_db()
    assert subscriber.user.check_password(password)


def test_an_expired_code_is_refused(client: Client, alice_sms, password: str) -> None:
    _ask(client, ALICE_PHONE)
    code = _last_code()
    ChannelVerification.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert _code_error(_enter(client, code)) == [NEUTRAL]
    assert _logs_in(password)


def test_a_code_works_once(client: Client, alice_sms) -> None:
    _ask(client, ALICE_PHONE)
    code = _last_code()
    assert _enter(client, code)["Location"] == DONE
    # Back on the code page for the same number, the same code again.
    session = client.session
    session["password_reset_phone"] = ALICE_PHONE
    session.save()
    assert _code_error(_enter(client, code, new1="yet-another-passphrase")) == [NEUTRAL]
    assert _logs_in(NEW)


def test_a_new_code_voids_the_one_before(client: Client, alice_sms) -> None:
    _ask(client, ALICE_PHONE)
    first = _last_code()
    client.post(RESEND)
    second = _last_code()
    assert len(_codes()) == 2
    if first != second:
        assert _code_error(_enter(client, first)) == [NEUTRAL]
    assert _enter(client, second)["Location"] == DONE


def test_five_wrong_codes_lock_the_number_for_an_hour_even_for_the_right_code(
    client: Client, alice_sms, password: str
) -> None:
    _ask(client, ALICE_PHONE)
    code = _last_code()
    for _ in range(4):
        assert _code_error(_enter(client, _wrong(code))) == [NEUTRAL]
    assert _code_error(_enter(client, _wrong(code))) == [LOCKED]
    assert ChannelVerification.objects.get().status == ChannelVerification.Status.VOID
    assert _code_error(_enter(client, code)) == [LOCKED]
    # No new code while locked, and the page says no more than before.
    response = client.post(RESEND, follow=True)
    assert "un nouveau code est en route" in response.content.decode()
    assert len(_codes()) == 1
    assert _logs_in(password)


def test_a_strangers_wrong_codes_do_not_lock_the_owner_out(client: Client, alice_sms, password: str) -> None:
    stranger = Client(REMOTE_ADDR="10.9.9.9")
    _ask(stranger, ALICE_PHONE)
    code = _last_code()
    for _ in range(passwords.OTP_MAX_WRONG):
        _enter(stranger, _wrong(code))
    assert _code_error(_enter(stranger, code)) == [LOCKED]  # the stranger is locked out…
    _ask(client, ALICE_PHONE)  # …Alice, from her own phone, is not
    assert len(_codes()) == 2
    assert _enter(client, _last_code())["Location"] == DONE
    assert not _logs_in(password)


def test_the_lock_ends_with_its_hour(client: Client, alice_sms) -> None:
    from django.core.cache import cache

    _ask(client, ALICE_PHONE)
    for _ in range(5):
        _enter(client, "000000" if _last_code() != "000000" else "111111")
    cache.clear()  # the hour passed: the counter's window expired
    client.post(RESEND)
    assert len(_codes()) == 2
    assert _enter(client, _last_code())["Location"] == DONE


def test_reset_codes_share_the_hourly_limits_of_every_code(client: Client, alice_sms, subscriber) -> None:
    # Three codes an hour to one number for one subscriber, whatever they are for:
    # a verification code sent earlier counts.
    verification.channel_code_send(channel=alice_sms)
    _ask(client, ALICE_PHONE)
    client.post(RESEND)
    client.post(RESEND)
    assert len(_codes()) == 2
    assert ChannelVerification.objects.filter(address=ALICE_PHONE).count() == 3


def test_reset_codes_are_limited_per_client_address(client: Client, settings) -> None:
    settings.SELFCARE_CODES_PER_CLIENT = 2
    for n in range(3):
        user = UserFactory(phone=f"+2162077700{n}")
        _verified(SubscriberFactory(user=user), user.phone)
        _ask(client, user.phone)
    assert len(_codes()) == 2
    # Another client is not concerned.
    _ask(Client(REMOTE_ADDR="10.9.9.9"), "+21620777002")
    assert len(_codes()) == 3


def test_a_verification_code_cannot_reset_a_password(client: Client, alice_sms, password: str) -> None:
    # A code sent to prove the channel (say, a clerk resent one) is not a reset code.
    verification.channel_code_send(channel=alice_sms)
    message = Message.objects.get(event=verification.VERIFICATION_CODE.name)
    verify_code = verification.verification_codes_fill([message])[message.pk]
    session = client.session
    session["password_reset_phone"] = ALICE_PHONE
    session.save()
    assert _code_error(_enter(client, verify_code)) == [NEUTRAL]
    assert _logs_in(password)


def test_the_password_rules_are_checked_only_once_the_code_is_right(client: Client, alice_sms) -> None:
    _ask(client, ALICE_PHONE)
    code = _last_code()
    # A wrong code with a weak password: only the code is mentioned (the rules know the account).
    response = _enter(client, _wrong(code), new1="alice-example")
    assert response.context["form"].errors == {"code": [NEUTRAL]}
    # The right code with a weak password: the rules, in Arabic on an Arabic page; the code stays good.
    response = client.post("/ar/password-reset/sms-code/", {"code": code, "new_password1": "12345678",
                                                            "new_password2": "12345678"})  # fmt: skip
    errors = response.context["form"].errors["new_password2"]
    assert errors and all(re.search("[\u0600-\u06ff]", e) for e in errors)
    assert ChannelVerification.objects.get().status == ChannelVerification.Status.PENDING
    assert _enter(client, code)["Location"] == DONE


def test_new_passwords_that_differ_are_refused_before_the_code_is_looked_at(client: Client, alice_sms) -> None:
    _ask(client, ALICE_PHONE)
    response = _enter(client, _last_code(), new1=NEW, new2=NEW + "x")
    assert response.context["form"].errors == {"new_password2": ["Les deux mots de passe ne correspondent pas."]}
    assert ChannelVerification.objects.get().attempts == 0


def test_her_other_sessions_end_with_the_reset(client: Client, alice_sms, subscriber) -> None:
    phone_left_logged_in = Client()
    phone_left_logged_in.force_login(subscriber.user)
    _ask(client, ALICE_PHONE)
    _enter(client, _last_code())
    response = phone_left_logged_in.get("/fr/dashboard/")
    assert response.status_code == 302 and "/fr/login/" in response["Location"]


def test_the_code_the_password_and_the_notice_commit_together_or_not_at_all(
    client: Client, alice_sms, password: str, monkeypatch
) -> None:
    _ask(client, ALICE_PHONE)
    code = _last_code()

    def outbox_down(**kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(passwords, "notify", outbox_down)
    with pytest.raises(RuntimeError):
        _enter(client, code)
    assert _logs_in(password)
    assert ChannelVerification.objects.get().status == ChannelVerification.Status.PENDING
    monkeypatch.undo()
    assert _enter(client, code)["Location"] == DONE


def test_the_phone_form_needs_the_csrf_token(alice_sms) -> None:
    client = Client(enforce_csrf_checks=True)
    assert _ask(client, ALICE_PHONE).status_code == 403
    assert _codes() == []


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_the_reset_code_sms_is_one_segment_in_every_language(language: str) -> None:
    from notifications.services import message_render

    rendered = message_render(
        event=PASSWORD_RESET_CODE, language=language, channel_kind=ChannelKind.SMS, context={"code": "123456"}
    )
    assert rendered.segments == 1, rendered.body
    assert "123456" in rendered.body
