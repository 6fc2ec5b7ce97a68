from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .appointments import PREFERRED_WINDOWS
from .models import Bill, Plan, PlanChange


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


class PlanChangeForm(forms.Form):
    """Which plan to move to and when, from the plan and preview pages' buttons.
    Any plan of the account's kind is accepted here; the service says why one
    is refused (the current plan, a retired one)."""

    plan = forms.ModelChoiceField(queryset=Plan.objects.none())
    mode = forms.ChoiceField(choices=PlanChange.Mode.choices, required=False)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(kind=kind)

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or PlanChange.Mode.NEXT_PERIOD


class AppointmentMoveForm(forms.Form):
    """The subscriber's one request to move a technician's visit."""

    preferred_date = forms.DateField(label=_("Preferred day"), widget=forms.DateInput(attrs={"type": "date"}))
    preferred_window = forms.ChoiceField(
        label=_("Preferred time"),
        choices=list(PREFERRED_WINDOWS.items()),
    )
