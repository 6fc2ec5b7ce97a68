from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


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
