"""Writes for subscribers and staff."""

from __future__ import annotations

from auditlog.models import LogEntry
from axes.utils import reset as axes_reset
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.audit import audit_record
from core.exceptions import ApplicationError
from core.throttle import throttle_allow, throttle_hit

from .models import ChannelKind, ContactChannel, Language, Subscriber, User
from .phones import InvalidPhoneNumber, country_names, phone_region, phone_to_e164
from .signals import password_changed


def subscriber_set_language(*, subscriber: Subscriber, language: str) -> None:
    """Remember the page language, which later also picks the language of messages."""
    if language in Language.values and subscriber.preferred_language != language:
        subscriber.preferred_language = language
        subscriber.save(update_fields=["preferred_language"])


# --- Contact channels (their verification, which sends a code, is notifications.verification) ---


class ChannelError(ApplicationError):
    code = "channel_error"


class InvalidAddress(ChannelError):
    code = "invalid_address"


def channel_address_clean(*, kind: str, raw: str) -> str:
    """E.164 for a phone channel (a mobile number only), lower case for e-mail."""
    if kind == ChannelKind.EMAIL:
        address = (raw or "").strip().lower()
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidAddress(_("Enter a valid e-mail address.")) from None
        return address
    try:
        number = phone_to_e164(raw, mobile_only=True)
    except InvalidPhoneNumber:
        raise InvalidAddress(_("Enter a mobile phone number that can receive messages.")) from None
    # Only the operator's country (and any it allows): no SMS to premium or far destinations.
    allowed = [settings.SELFCARE_PHONE_REGION, *settings.SELFCARE_PHONE_REGIONS_ALLOWED]
    if phone_region(number) not in allowed:
        raise InvalidAddress(
            _("We can only send messages to numbers from: %(countries)s.") % {"countries": country_names(allowed)}
        )
    return number


def channel_update(
    *,
    channel: ContactChannel,
    language: str,
    wants_bills: bool,
    wants_reminders: bool,
    wants_service: bool,
    wants_offers: bool,
) -> ContactChannel:
    channel.language = language
    channel.wants_bills = wants_bills
    channel.wants_reminders = wants_reminders
    channel.wants_service = wants_service
    channel.wants_offers = wants_offers
    channel.save(update_fields=["language", "wants_bills", "wants_reminders", "wants_service", "wants_offers"])
    return channel


def channel_remove(*, channel: ContactChannel) -> None:
    """Remove a channel; a paperless subscriber left with none gets paper bills again."""
    with transaction.atomic():
        subscriber = channel.subscriber
        channel.delete()
        if subscriber.paperless and not subscriber.channels.filter(verified_at__isnull=False).exists():
            subscriber.paperless = False
            subscriber.save(update_fields=["paperless"])


def subscriber_set_paperless(*, subscriber: Subscriber, paperless: bool) -> None:
    if paperless and not subscriber.channels.filter(verified_at__isnull=False).exists():
        raise ChannelError(_("Verify a phone number or an e-mail address first: e-bills need somewhere to go."))
    if subscriber.paperless != paperless:
        subscriber.paperless = paperless
        subscriber.save(update_fields=["paperless"])


def password_reset_allowed(*, email: str, client: str) -> bool:
    """Whether one more reset mail may go out: at most a few per address and per
    client address an hour, so nobody floods a mailbox or our mail provider."""
    return throttle_allow(
        limits=[
            ("password-reset-address", email.strip().lower(), settings.SELFCARE_PASSWORD_RESETS_PER_ADDRESS, 3600),
            ("password-reset-client", client, settings.SELFCARE_PASSWORD_RESETS_PER_CLIENT, 3600),
        ]
    )


# --- Passwords ---


class PasswordError(ApplicationError):
    code = "password_error"


class WrongPassword(PasswordError):
    code = "wrong_password"


class TooManyWrongPasswords(PasswordError):
    code = "too_many_wrong_passwords"


def user_password_set(*, user: User, password: str, via: str) -> None:
    """Set a new password: every way one changes comes here (the portal's form, a
    code by SMS, an e-mail link), so each leaves its audit entry and sends its
    security notice (`password_changed`; notifications writes it to the outbox)
    in the same transaction. Other sessions of the user end with it: Django
    checks each session against a hash of the password.

    `via` says how, for the audit trail: "portal", "sms", "email".
    The caller has validated the password (Django's validators).
    """
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        # The trail never holds the hash (backoffice.apps); this entry says that it changed, and how.
        audit_record(
            instance=user, action=LogEntry.Action.UPDATE, changes={"password": ["******", "******"]}, extra={"via": via}
        )
        password_changed.send(sender=User, user=user)
        # Failures counted against the old password no longer lock the account out:
        # who just proved they own it (a code, a link, the current password) logs in
        # with the new one at once. axes counts a user's failures under the e-mail
        # (accounts.backends.axes_username), or as typed when there is none.
        axes_reset(username=user.email.lower() if user.email else user.phone)


def user_password_change(*, user: User, current_password: str, new_password: str) -> None:
    """A logged-in user changes the password, giving the current one first.

    Wrong current passwords are limited as failed logins are (AXES_FAILURE_LIMIT
    within AXES_COOLOFF_TIME, per user): a session left open on a shared phone
    must not let anyone try passwords without end. Past the limit even the right
    one is refused until the window ends.
    """
    window = int(settings.AXES_COOLOFF_TIME.total_seconds())
    # Counted before the check, not after: requests sent at once would all pass a
    # look at the count while the slow hash of each is computed. A right password
    # counts too (a few changes in the window are plenty).
    if not throttle_hit(scope="password-change", key=str(user.pk), limit=settings.AXES_FAILURE_LIMIT, window=window):
        raise TooManyWrongPasswords(_("Too many wrong passwords. Please try again in a few minutes."))
    if not user.check_password(current_password):
        raise WrongPassword(_("Your current password is not right. Please type it again."))
    user_password_set(user=user, password=new_password, via="portal")


# --- Staff second factor (TOTP, django-otp) ---


def staff_device_for_enrolment(*, user: User) -> TOTPDevice:
    """The staff user's unconfirmed TOTP device, made once: reloading the page keeps
    the same secret, so a QR code already scanned stays good."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="default", confirmed=False)


def staff_device_confirm(*, device: TOTPDevice) -> None:
    """A first valid code proves the app holds the secret; other half-done enrolments go."""
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user_id=device.user_id, confirmed=False).delete()
