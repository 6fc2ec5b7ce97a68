"""The subscriber's password, as far as messages go: a security notice whenever
it changes, and a reset by a code sent to the phone they log in with.

Setting a password is accounts' (accounts.services.user_password_set); telling
the subscriber, and sending a code, means writing to the outbox, so it is done
here, as verification.py proves a channel: `notifications` depends on
`accounts`, never the other way round. The notice follows accounts'
`password_changed` signal (connected in apps.py), in the same transaction.

A reset code is a channel code (verification.py) with its own purpose: the
same six digits derived from a salt, the same keyed hash, 10 minutes, void
after 5 wrong entries, and the same hourly limits as any other code. On top,
per phone number whether or not it names an account, 5 wrong codes within an
hour lock the number's SMS reset for the rest of that hour, and every answer
is the same for a number that names nobody: the pages reveal no account.
"""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ChannelVerification, Subscriber, User
from accounts.selectors import password_reset_channel
from accounts.services import user_password_set
from core.throttle import throttle_exceeded, throttle_hit

from .events import EventType
from .services import notify
from .verification import (
    OTP_MAX_WRONG,
    CodeRejected,
    TooManyCodes,
    code_matches,
    code_send,
    code_use,
    code_wrong,
    verification_codes_fill,
)

# A security notice: to every verified channel, whatever its choices, and at
# night too: if it was not the subscriber, they should know at once.
PASSWORD_CHANGED = EventType(
    name="password_changed",
    label=gettext_lazy("Password changed"),
    templates="notifications/password_changed",
    urgent=True,
    whatsapp_params=("date", "time"),
)
PASSWORD_RESET_CODE = EventType(
    name="password_reset_code",
    label=gettext_lazy("Password reset code"),
    templates="notifications/password_reset_code",
    urgent=True,
    whatsapp_params=("code",),
    sealed_param="code",
    sealed_fill=verification_codes_fill,
)

# Wrong reset codes per phone number (typed, normalised), within this window.
WRONG_CODES_SCOPE = "password-reset-wrong-codes"
WRONG_CODES_WINDOW = 3600


def password_changed_notify(*, user: User) -> int:
    """The security notice to a subscriber whose password just changed; staff get none here."""
    subscriber = Subscriber.objects.filter(user=user).first()
    if subscriber is None:
        return 0
    now = timezone.now()
    local = timezone.localtime(now)
    return notify(
        event=PASSWORD_CHANGED,
        subscriber=subscriber,
        # Each change is its own event.
        object_key=f"u{user.pk}-{now:%Y%m%d%H%M%S%f}",
        context={"date": local.strftime("%d/%m/%Y"), "time": local.strftime("%H:%M")},
        now=now,
    )


def _lock_key(phone: str, client: str) -> str:
    # Per number and client address: a stranger's wrong codes lock the stranger out,
    # not the owner of the number. Guesses at one number stay bounded anyway: a code
    # is void after OTP_MAX_WRONG wrong entries, and a number gets few codes an hour.
    return f"{phone}|{client}"


def _locked(phone: str, client: str) -> bool:
    return throttle_exceeded(scope=WRONG_CODES_SCOPE, key=_lock_key(phone, client), limit=OTP_MAX_WRONG)


def password_reset_code_send(*, phone: str, client: str) -> None:
    """Send a reset code to `phone` (E.164) when it is the login phone of an active
    subscriber and a verified SMS channel of theirs (accounts.selectors.
    password_reset_channel); otherwise, or past a limit, send nothing.

    It returns nothing and raises nothing on purpose: the page says the same
    thing whether or not the number names an account, or a limit was reached.
    """
    if _locked(phone, client):
        return
    channel = password_reset_channel(phone=phone)
    if channel is None:
        return
    try:
        code_send(
            channel=channel,
            purpose=ChannelVerification.Purpose.PASSWORD_RESET,
            event=PASSWORD_RESET_CODE,
            client=client,
        )
    except TooManyCodes:
        return


def password_reset_by_code(*, phone: str, code: str, password: str, client: str) -> User:
    """Check the reset code sent to `phone` and set the new password, in one transaction.

    Raises CodeRejected with one message for every failure (a wrong, expired,
    used or void code, or a number that names nobody), or another once the
    number is locked; and Django's ValidationError for a password its validators
    refuse, which is only looked at once the code is right (the validators know
    the account: an error must not tell a stranger about it), and which leaves
    the code usable, so the subscriber tries another password with it.
    """
    if _locked(phone, client):
        raise CodeRejected(_("Too many wrong codes. Please try again in an hour."))
    now = timezone.now()
    user: User | None = None
    with transaction.atomic():
        verification = (
            ChannelVerification.objects.select_for_update(of=("self",))
            .filter(
                purpose=ChannelVerification.Purpose.PASSWORD_RESET,
                status=ChannelVerification.Status.PENDING,
                address=phone,
                # The login phone is unique: the one subscriber it names, as the code was sent.
                channel__subscriber__user__phone=phone,
            )
            .select_related("channel__subscriber__user")
            .order_by("-created_at")
            .first()
        )
        if verification is not None and verification.expires_at > now:
            if not code_matches(verification=verification, code=code):
                code_wrong(verification=verification)
            elif password_reset_channel(phone=phone) is not None:  # still a subscriber's, active, verified
                user = verification.channel.subscriber.user
                validate_password(password, user)
                code_use(verification=verification)
                user_password_set(user=user, password=password, via="sms")
    if user is None:
        # Counted per number and client, known or not, so the lock tells nothing either.
        throttle_hit(
            scope=WRONG_CODES_SCOPE, key=_lock_key(phone, client), limit=OTP_MAX_WRONG, window=WRONG_CODES_WINDOW
        )
        if _locked(phone, client):
            raise CodeRejected(_("Too many wrong codes. Please try again in an hour."))
        raise CodeRejected(_("This code is not right or no longer valid. Check it, or ask for a new one."))
    return user
