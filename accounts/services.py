"""Writes for subscribers and staff."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import ApplicationError

from .models import ChannelKind, ChannelVerification, ContactChannel, Language, Subscriber, User
from .phones import InvalidPhoneNumber, ascii_digits, phone_to_e164


def subscriber_set_language(*, subscriber: Subscriber, language: str) -> None:
    """Remember the page language, which later also picks the language of messages."""
    if language in Language.values and subscriber.preferred_language != language:
        subscriber.preferred_language = language
        subscriber.save(update_fields=["preferred_language"])


# --- Contact channels and their verification -------------------------------

OTP_VALIDITY = dt.timedelta(minutes=10)
OTP_MAX_WRONG = 5
OTP_MAX_PER_HOUR = 3


class ChannelError(ApplicationError):
    code = "channel_error"


class InvalidAddress(ChannelError):
    code = "invalid_address"


class TooManyCodes(ChannelError):
    code = "too_many_codes"


class CodeRejected(ChannelError):
    code = "code_rejected"


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
        return phone_to_e164(raw, mobile_only=True)
    except InvalidPhoneNumber:
        raise InvalidAddress(_("Enter a mobile phone number that can receive messages.")) from None


def channel_add(
    *, subscriber: Subscriber, kind: str, address: str, language: str | None = None, registered_by: User | None = None
) -> ContactChannel:
    """Register a channel (unverified) and send it a code; adding it again resends instead.

    The answer is the same whether or not another subscriber uses the address.
    """
    address = channel_address_clean(kind=kind, raw=address)
    with transaction.atomic():
        channel, _created = ContactChannel.objects.get_or_create(
            subscriber=subscriber,
            kind=kind,
            address=address,
            defaults={"language": language or subscriber.preferred_language, "registered_by": registered_by},
        )
    if not channel.is_verified:
        channel_code_send(channel=channel, requested_by=registered_by)
    return channel


def _code_hash(channel_id: int, code: str) -> str:
    # Keyed: a leaked table of six-digit codes cannot be brute-forced offline.
    return hmac.new(settings.SECRET_KEY.encode(), f"{channel_id}:{code}".encode(), hashlib.sha256).hexdigest()


def channel_code_send(*, channel: ContactChannel, requested_by: User | None = None) -> None:
    """Send a fresh six-digit code; earlier codes for the channel stop working."""
    from notifications.models import Event
    from notifications.services import notify

    now = timezone.now()
    with transaction.atomic():
        # Lock the channel so two quick clicks cannot both pass the hourly limit.
        ContactChannel.objects.select_for_update().get(pk=channel.pk)
        recent = ChannelVerification.objects.filter(
            address=channel.address, created_at__gte=now - dt.timedelta(hours=1)
        )
        if recent.count() >= OTP_MAX_PER_HOUR:
            raise TooManyCodes(_("Too many codes were sent to this address. Please try again in an hour."))
        channel.verifications.filter(status=ChannelVerification.Status.PENDING).update(
            status=ChannelVerification.Status.VOID
        )
        code = f"{secrets.randbelow(1_000_000):06d}"
        verification = ChannelVerification.objects.create(
            channel=channel,
            address=channel.address,
            code_hash=_code_hash(channel.pk, code),
            expires_at=now + OTP_VALIDITY,
            requested_by=requested_by,
        )
        notify(
            event=Event.VERIFICATION_CODE,
            subscriber=channel.subscriber,
            object_key=f"v{verification.pk}",
            context={"code": code},
            channels=[channel],
            now=now,
        )


def channel_verify(*, channel: ContactChannel, code: str, verified_by: User | None = None) -> None:
    """Check a code: single use, 10 minutes, void after 5 wrong entries."""
    now = timezone.now()
    code = ascii_digits((code or "").strip())
    # The outcome is decided in the transaction and raised after it, so a wrong
    # attempt is counted even though the caller gets an exception.
    failure: str | None = None
    with transaction.atomic():
        verification = (
            channel.verifications.select_for_update()
            .filter(status=ChannelVerification.Status.PENDING)
            .order_by("-created_at")
            .first()
        )
        if verification is None or verification.expires_at <= now:
            failure = _("This code has expired. Ask for a new one.")
        elif not hmac.compare_digest(verification.code_hash, _code_hash(channel.pk, code)):
            verification.attempts += 1
            if verification.attempts >= OTP_MAX_WRONG:
                verification.status = ChannelVerification.Status.VOID
                failure = _("Too many wrong codes. Ask for a new one.")
            else:
                failure = _("This code is not right. Check it and try again.")
            verification.save(update_fields=["attempts", "status"])
        else:
            verification.status = ChannelVerification.Status.USED
            verification.save(update_fields=["status"])
            channel.verified_at = now
            if verified_by is not None and channel.registered_by_id is None:
                channel.registered_by = verified_by
            channel.save(update_fields=["verified_at", "registered_by"])
    if failure:
        raise CodeRejected(failure)


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
