from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from .backends import client_address
from .services import password_reset_allowed


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
