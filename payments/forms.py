from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Provider


class PayForm(forms.Form):
    """Bills to pay (the open ones, preselected) or an amount, and a provider."""

    bills = forms.MultipleChoiceField(label=_("Bills to pay"), required=False, widget=forms.CheckboxSelectMultiple)
    amount = forms.DecimalField(
        label=_("Or another amount"),
        required=False,
        min_value=Decimal("0.001"),
        max_digits=14,
        decimal_places=3,
        localize=False,
    )
    provider = forms.ModelChoiceField(
        label=_("Pay with"), queryset=Provider.objects.none(), empty_label=None, widget=forms.RadioSelect
    )

    def __init__(self, *args, bill_choices: list[tuple[str, str]], providers, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bills"].choices = bill_choices
        self.fields["provider"].queryset = providers

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("bills") and data.get("amount") is None and "amount" not in self.errors:
            raise forms.ValidationError(_("Choose bills or enter an amount."))
        return data
