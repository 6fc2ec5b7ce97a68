"""Proving a contact channel: a six-digit code sent to the address, typed back.

The channels themselves are subscriber data and live in `accounts` (a clerk
registers them, paperless billing depends on them). Proving one means sending
it a message, so the flow lives here, beside the outbox it writes to: this way
`notifications` depends on `accounts` and never the other way round.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ChannelVerification, ContactChannel, Subscriber, User
from accounts.phones import ascii_digits
from accounts.services import ChannelError, channel_address_clean
from core.audit import audit_bulk

from .events import EventType
from .services import notify

OTP_VALIDITY = dt.timedelta(minutes=10)
OTP_MAX_WRONG = 5
OTP_MAX_PER_HOUR = 3

VERIFICATION_CODE = EventType(
    name="verification_code",
    label=gettext_lazy("Verification code"),
    templates="notifications/verification_code",
    urgent=True,
    whatsapp_params=("code",),
    # The code is what verifies the channel, so it goes to one that is not yet.
    verified_only=False,
)


class TooManyCodes(ChannelError):
    code = "too_many_codes"


class CodeRejected(ChannelError):
    code = "code_rejected"


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
    now = timezone.now()
    with transaction.atomic():
        # Lock the channel so two quick clicks cannot both pass the hourly limit.
        ContactChannel.objects.select_for_update().get(pk=channel.pk)
        recent = ChannelVerification.objects.filter(
            address=channel.address, created_at__gte=now - dt.timedelta(hours=1)
        )
        if recent.count() >= OTP_MAX_PER_HOUR:
            raise TooManyCodes(_("Too many codes were sent to this address. Please try again in an hour."))
        pending = list(
            channel.verifications.filter(status=ChannelVerification.Status.PENDING).values_list("pk", flat=True)
        )
        ChannelVerification.objects.filter(pk__in=pending).update(status=ChannelVerification.Status.VOID)
        audit_bulk(model=ChannelVerification, pks=pending, changes={"status": ["pending", "void"]})
        code = f"{secrets.randbelow(1_000_000):06d}"
        verification = ChannelVerification.objects.create(
            channel=channel,
            address=channel.address,
            code_hash=_code_hash(channel.pk, code),
            expires_at=now + OTP_VALIDITY,
            requested_by=requested_by,
        )
        notify(
            event=VERIFICATION_CODE,
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
