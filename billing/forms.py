from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Bill


class BillFilterForm(forms.Form):
    """The bills page's filters. Unknown values are dropped, never a 500."""

    account = forms.ChoiceField(label=_("Account"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Bill.Status.choices]
    )
    year = forms.TypedChoiceField(label=_("Year"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, accounts: list[tuple[str, str]], years: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", _("All accounts")), *accounts]
        self.fields["year"].choices = [("", _("All years")), *((y, str(y)) for y in years)]
