"""Log in with an e-mail address or a phone number, in any common spelling."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from core.throttle import throttle_exceeded, throttle_hit

from .models import User
from .phones import InvalidPhoneNumber, phone_to_e164
from .selectors import user_with_subscriber


def normalize_identifier(identifier: str) -> str:
    """The canonical login identifier: a lower-case e-mail or an E.164 number.

    django-axes counts failures against this too, so `+216 20 000 001` and
    `20000001` share one throttle. Cut to the longest e-mail address (254): axes
    stores it in 255 characters, and a longer one answered 500.
    """
    identifier = (identifier or "").strip()[:254]
    if "@" in identifier:
        return identifier.lower()
    try:
        return phone_to_e164(identifier)
    except InvalidPhoneNumber:
        return identifier.lower()


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """What django-axes counts failures against: the account, not the spelling.

    A subscriber logs in by e-mail or by phone; both name one user, so 5 failures
    by phone and 5 by e-mail lock the account as 10 by either would. An
    identifier that names nobody is counted as typed (normalized).
    """
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    identifier = normalize_identifier(raw)
    # axes asks several times per request: look the user up once.
    cache: dict[str, str] = request.__dict__.setdefault("_axes_usernames", {})
    if identifier not in cache:
        user = _user_by_identifier(identifier)
        cache[identifier] = user.email.lower() if user else identifier
    return cache[identifier]


def _user_by_identifier(identifier: str) -> User | None:
    if not identifier:
        return None
    lookup = {"email__iexact": identifier} if "@" in identifier else {"phone": identifier}
    return User.objects.filter(**lookup).only("email").first()


def client_address(request: HttpRequest) -> str:
    # The address django-axes sees (same proxy settings), for the project's own limits.
    return get_client_ip_address(request) or "unknown"


class ClientAddressThrottleBackend:
    """Refuses every login from a client address that failed too often, whatever
    the usernames: one address trying one password on 30 accounts (spraying) is
    stopped, while axes' per-account count stays low enough for a forgetful user.

    It only refuses (no get_user: sessions are never this backend's); failures
    are counted by `login_failure_count` (user_login_failed).
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if request is not None and throttle_exceeded(
            scope="login-ip", key=client_address(request), limit=settings.SELFCARE_LOGIN_FAILURES_PER_CLIENT
        ):
            # Shown as django-axes' lockout page (429) by its middleware.
            request.axes_locked_out = True  # type: ignore[attr-defined]
            request.axes_credentials = credentials  # type: ignore[attr-defined]
            raise PermissionDenied
        return None


def login_failure_count(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any):
    if request is not None and not getattr(request, "axes_locked_out", False):
        throttle_hit(scope="login-ip", key=client_address(request), limit=settings.SELFCARE_LOGIN_FAILURES_PER_CLIENT,
                     window=settings.SELFCARE_LOGIN_FAILURES_WINDOW)  # fmt: skip


class EmailOrPhoneBackend(ModelBackend):
    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if not username or not password:
            return None
        identifier = normalize_identifier(username)
        lookup = {"email__iexact": identifier} if "@" in identifier else {"phone": identifier}
        user = User.objects.filter(**lookup).first()
        if user is None:
            # Spend the same time as a real check so timing does not reveal accounts.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id: int) -> User | None:  # type: ignore[override]
        # Every portal page needs the subscriber too: one query instead of two.
        user = user_with_subscriber(user_id=user_id)
        return user if user and self.user_can_authenticate(user) else None
