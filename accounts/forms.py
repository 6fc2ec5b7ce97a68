from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from .backends import client_address
from .models import User
from .services import password_reset_allowed, user_password_set


class LoginForm(AuthenticationForm):
    """E-mail address or phone number, in any spelling, and a password."""

    username = forms.CharField(
        label=_("E-mail or phone number"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "dir": "ltr"}),
    )

    error_messages = {
        "invalid_login": _("That e-mail or phone number and password do not match an account."),
        "inactive": _("This account is disabled. Please contact your agency."),
    }


class LimitedPasswordResetForm(PasswordResetForm):
    """Django's form, sending nothing past the limits (per address, per client).
    The page answers the same either way, so it reveals neither the limit nor the account."""

    def save(self, *args, request=None, **kwargs) -> None:  # type: ignore[override]
        email = self.cleaned_data["email"]
        if request is not None and not password_reset_allowed(email=email, client=client_address(request)):
            return
        super().save(*args, request=request, **kwargs)


class EmailResetSetPasswordForm(SetPasswordForm):
    """Django's form behind the e-mail link, saving through the one service that
    sets a password (audit entry, security notice)."""

    def save(self, commit: bool = True) -> User:
        user_password_set(user=self.user, password=self.cleaned_data["new_password1"], via="email")
        return self.user


class PasswordChangeForm(SetPasswordForm):
    """The current password, then the new one twice, checked by Django's validators.

    The current password is checked by the service (accounts.services.
    user_password_change), which counts the wrong ones; the form checks shape only.
    """

    old_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    field_order = ["old_password", "new_password1", "new_password2"]
