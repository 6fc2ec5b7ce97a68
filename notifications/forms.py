from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import ChannelKind, ContactChannel, Language


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
