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
from core.throttle import throttle_allow

from .events import EventType
from .models import Message
from .services import message_object_key, notify

OTP_VALIDITY = dt.timedelta(minutes=10)
OTP_MAX_WRONG = 5
OTP_MAX_PER_HOUR = 3


def _code_hash(channel_id: int, code: str) -> str:
    # Keyed: a leaked table of six-digit codes cannot be brute-forced offline.
    return hmac.new(settings.SECRET_KEY.encode(), f"{channel_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _code_from_salt(salt: str) -> str:
    """The six digits of one verification, derived (keyed) from its random salt.

    Nothing readable by staff holds the code: the outbox row says `******` and
    the verification row keeps a salt and a hash, both useless without
    SECRET_KEY. The relay derives the code again just before sending.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), f"channel-code:{salt}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def verification_codes_fill(messages: list[Message]) -> dict[int, str | None]:
    """Each verification message's code, at send time; None if the code was
    replaced by a newer one, used, voided or expired (sending it would not help)."""
    ids = {m.pk: int(message_object_key(message=m).removeprefix("v")) for m in messages}
    now = timezone.now()
    live = {
        v.pk: _code_from_salt(v.salt)
        for v in ChannelVerification.objects.filter(
            pk__in=set(ids.values()), status=ChannelVerification.Status.PENDING, expires_at__gt=now
        ).exclude(salt="")
    }
    return {pk: live.get(verification_id) for pk, verification_id in ids.items()}


VERIFICATION_CODE = EventType(
    name="verification_code",
    label=gettext_lazy("Verification code"),
    templates="notifications/verification_code",
    urgent=True,
    whatsapp_params=("code",),
    # The code is what verifies the channel, so it goes to one that is not yet.
    verified_only=False,
    sealed_param="code",
    sealed_fill=verification_codes_fill,
)


class TooManyCodes(ChannelError):
    code = "too_many_codes"


class CodeRejected(ChannelError):
    code = "code_rejected"


def channel_add(
    *,
    subscriber: Subscriber,
    kind: str,
    address: str,
    language: str | None = None,
    registered_by: User | None = None,
    client: str = "",
) -> ContactChannel:
    """Register a channel (unverified) and send it a code; adding it again resends instead.

    The answer is the same whether or not another subscriber uses the address.
    `client` is the requester's network address (subscriber pages), for its own limit.
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
        channel_code_send(channel=channel, requested_by=registered_by, client=client)
    return channel


def channel_code_send(*, channel: ContactChannel, requested_by: User | None = None, client: str = "") -> None:
    """Send a fresh six-digit code; earlier codes for the channel stop working."""
    code_send(
        channel=channel,
        purpose=ChannelVerification.Purpose.VERIFY,
        event=VERIFICATION_CODE,
        requested_by=requested_by,
        client=client,
    )


def code_send(
    *,
    channel: ContactChannel,
    purpose: str,
    event: EventType,
    requested_by: User | None = None,
    client: str = "",
) -> ChannelVerification:
    """Send a fresh six-digit code for `purpose` (by `event`, whose text says what
    it is for); earlier codes of that purpose for the channel stop working.

    Limited per hour: 3 to one address for one subscriber (counted per subscriber,
    so nobody can use up another person's number), and, in the cache (they must
    survive a removed channel), per subscriber, per destination across
    subscribers, and per client address when the subscriber asks from the portal
    (a clerk's counter serves many subscribers from one address). Together they
    stop anyone pumping codes to many numbers (premium destinations) or one.
    Every purpose counts against the same limits (a reset code is a code).
    """
    now = timezone.now()
    with transaction.atomic():
        # Lock the channel so two quick clicks cannot both pass the hourly limit.
        ContactChannel.objects.select_for_update().get(pk=channel.pk)
        recent = ChannelVerification.objects.filter(
            channel__subscriber_id=channel.subscriber_id,
            address=channel.address,
            created_at__gte=now - dt.timedelta(hours=1),
        )
        if recent.count() >= OTP_MAX_PER_HOUR:
            raise TooManyCodes(_("Too many codes were sent to this address. Please try again in an hour."))
        limits = [
            ("codes-subscriber", str(channel.subscriber_id), settings.SELFCARE_CODES_PER_SUBSCRIBER, 3600),
            ("codes-address", channel.address, settings.SELFCARE_CODES_PER_ADDRESS, 3600),
        ]
        if client:
            limits.append(("codes-client", client, settings.SELFCARE_CODES_PER_CLIENT, 3600))
        if not throttle_allow(limits=limits):
            raise TooManyCodes(_("Too many codes were asked for. Please try again in an hour."))
        pending = list(
            channel.verifications.filter(status=ChannelVerification.Status.PENDING, purpose=purpose).values_list(
                "pk", flat=True
            )
        )
        ChannelVerification.objects.filter(pk__in=pending).update(status=ChannelVerification.Status.VOID)
        audit_bulk(model=ChannelVerification, pks=pending, changes={"status": ["pending", "void"]})
        salt = secrets.token_hex(16)
        verification = ChannelVerification.objects.create(
            channel=channel,
            purpose=purpose,
            address=channel.address,
            salt=salt,
            code_hash=_code_hash(channel.pk, _code_from_salt(salt)),
            expires_at=now + OTP_VALIDITY,
            requested_by=requested_by,
        )
        notify(
            event=event,
            subscriber=channel.subscriber,
            object_key=f"v{verification.pk}",
            context={},
            channels=[channel],
            now=now,
        )
    return verification


def channel_verify(*, channel: ContactChannel, code: str, verified_by: User | None = None) -> None:
    """Check a code: single use, 10 minutes, void after 5 wrong entries."""
    now = timezone.now()
    # The outcome is decided in the transaction and raised after it, so a wrong
    # attempt is counted even though the caller gets an exception.
    failure: str | None = None
    with transaction.atomic():
        verification = (
            channel.verifications.select_for_update()
            .filter(status=ChannelVerification.Status.PENDING, purpose=ChannelVerification.Purpose.VERIFY)
            .order_by("-created_at")
            .first()
        )
        if verification is None or verification.expires_at <= now:
            failure = _("This code has expired. Ask for a new one.")
        elif not code_matches(verification=verification, code=code):
            if code_wrong(verification=verification):
                failure = _("Too many wrong codes. Ask for a new one.")
            else:
                failure = _("This code is not right. Check it and try again.")
        else:
            code_use(verification=verification)
            channel.verified_at = now
            if verified_by is not None and channel.registered_by_id is None:
                channel.registered_by = verified_by
            channel.save(update_fields=["verified_at", "registered_by"])
    if failure:
        raise CodeRejected(failure)


# --- One code's checks, for every purpose; the caller holds the row's lock ---


def code_matches(*, verification: ChannelVerification, code: str) -> bool:
    """Whether `code` (as typed: spaces, Arabic-Indic digits) is this verification's."""
    code = ascii_digits((code or "").strip())
    return hmac.compare_digest(verification.code_hash, _code_hash(verification.channel_id, code))


def code_wrong(*, verification: ChannelVerification) -> bool:
    """Count a wrong entry; the code is void after OTP_MAX_WRONG. True if it is now."""
    verification.attempts += 1
    if verification.attempts >= OTP_MAX_WRONG:
        verification.status = ChannelVerification.Status.VOID
    verification.save(update_fields=["attempts", "status"])
    return verification.status == ChannelVerification.Status.VOID


def code_use(*, verification: ChannelVerification) -> None:
    verification.status = ChannelVerification.Status.USED
    verification.save(update_fields=["status"])
