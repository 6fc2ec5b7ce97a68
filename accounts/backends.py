"""Log in with an e-mail address or a phone number, in any common spelling."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

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
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return normalize_identifier(raw)


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
