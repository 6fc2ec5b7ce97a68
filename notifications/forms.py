from __future__ import annotations

from django import forms
from django.contrib.auth.forms import SetPasswordMixin
from django.utils.translation import gettext_lazy as _

from accounts.models import ChannelKind, ContactChannel, Language
from accounts.phones import InvalidPhoneNumber, phone_to_e164


class ChannelAddForm(forms.Form):
    kind = forms.ChoiceField(label=_("Channel"), choices=ChannelKind.choices)
    address = forms.CharField(
        label=_("Phone number or e-mail address"),
        max_length=254,
        widget=forms.TextInput(attrs={"dir": "ltr", "autocomplete": "off"}),
    )
    language = forms.ChoiceField(label=_("Language of messages"), choices=Language.choices)


class ChannelVerifyForm(forms.Form):
    code = forms.CharField(
        label=_("Code received"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "dir": "ltr", "autofocus": True}
        ),
    )


class ChannelPreferencesForm(forms.ModelForm):
    class Meta:
        model = ContactChannel
        fields = ["language", "wants_bills", "wants_reminders", "wants_service", "wants_offers"]


class PasswordResetPhoneForm(forms.Form):
    """The phone number a subscriber logs in with, in any spelling the login accepts."""

    phone = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "dir": "ltr", "inputmode": "tel"}),
    )

    def clean_phone(self) -> str:
        try:
            return phone_to_e164(self.cleaned_data["phone"])
        except InvalidPhoneNumber:
            raise forms.ValidationError(
                _("Enter the phone number you log in with, for example 20 000 001."), code="invalid"
            ) from None


class PasswordResetCodeForm(SetPasswordMixin, forms.Form):
    """The code received by SMS and the new password twice. The password's rules
    are checked by the service once the code is right (they know the account)."""

    code = forms.CharField(
        label=_("Code received by SMS"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "dir": "ltr", "autofocus": True}
        ),
    )
    new_password1, new_password2 = SetPasswordMixin.create_password_fields(
        label1=_("New password"), label2=_("New password confirmation")
    )

    def clean(self) -> dict:
        self.validate_passwords("new_password1", "new_password2")
        return super().clean()
