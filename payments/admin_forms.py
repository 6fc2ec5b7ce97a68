"""Forms of the payments back office: a counter payment, its reversal, a
settlement file's upload, and a provider.

They parse and check what staff type, with a message per field; the services
(payments.counter, payments.settlement) decide, and check again.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.widgets import AdminRadioSelect, AutocompleteSelect
from django.db.models import QuerySet
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from billing.models import Bill, ServiceAccount
from core.money import format_money

from .models import CounterPayment, Payment, Provider
from .selectors import open_bills_of
from .services import InvalidAmount, amount_error_text, amount_example, amount_parse

# Digits a clerk's keyboard may type in Arabic, and the Arabic decimal separator.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫", "01234567890123456789.")
_TOKEN = re.compile(r"[0-9A-F]{16}")


def amount_from_input(value: str, *, currency: str) -> Decimal:
    """An amount as a person types it: spaces between thousands, a decimal comma
    or point, Arabic-Indic digits. Then the API's rules (`amount_parse`)."""
    text = "".join(value.split()).translate(_DIGITS).replace("\u066c", "")  # ٬ groups thousands
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        return amount_parse(text, currency=currency)
    except InvalidAmount as exc:
        raise forms.ValidationError(amount_error_text(text, currency=currency, error=exc)) from None


class AmountField(forms.CharField):
    """A money amount in the operator's currency; empty is None."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "dir": "ltr", "size": 14}))
        super().__init__(**kwargs)

    def clean(self, value):  # type: ignore[no-untyped-def]
        text = super().clean(value)
        if not text:
            return None
        return amount_from_input(text, currency=settings.SELFCARE_CURRENCY)


# --- Counter payments ------------------------------------------------------------


class CounterAccountForm(forms.Form):
    """Step one: which account. Only the clerk's agencies' accounts can be found or sent."""

    def __init__(self, *args, accounts: QuerySet[ServiceAccount], admin_site: admin.AdminSite, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The account search of the service accounts' admin (number, name, phone), scoped like it.
        self.fields["account"] = forms.ModelChoiceField(
            label=_("Account"),
            queryset=accounts,
            widget=AutocompleteSelect(Payment._meta.get_field("account"), admin_site),
            help_text=_("Type the account number, the customer's name or phone number."),
        )


class BillChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Bill) -> str:
        return _("%(period)s · bill %(number)s · %(due)s due by %(date)s") % {
            "period": date_format(obj.period, "YEAR_MONTH_FORMAT"),
            "number": obj.number,
            "due": format_money(obj.amount_due, obj.currency),
            "date": date_format(obj.due_date, "SHORT_DATE_FORMAT"),
        }


class CounterPaymentForm(forms.Form):
    """Step two, for one account: a bill or an amount, and how it was paid."""

    # Ties a submission to this form: a double click, or the page sent again,
    # records the payment once (its counter reference is made from it).
    token = forms.CharField(widget=forms.HiddenInput, max_length=16)
    bill = BillChoiceField(
        label=_("Bill"),
        queryset=Bill.objects.none(),
        required=False,
        blank=True,
        widget=AdminRadioSelect(attrs={"class": "radiolist"}),
        empty_label=_("No particular bill: the oldest open bills first"),
    )
    amount = AmountField(label=_("Amount"), required=False)
    method = forms.ChoiceField(
        label=_("Paid by"),
        choices=CounterPayment.Method.choices,
        initial=CounterPayment.Method.CASH,
        widget=AdminRadioSelect(attrs={"class": "radiolist"}),
    )
    amount_tendered = AmountField(
        label=_("Cash handed over"),
        required=False,
        help_text=_("Cash only, if more than the amount: the change is printed on the receipt."),
    )
    cheque_number = forms.CharField(label=_("Cheque number"), max_length=32, required=False)
    cheque_bank = forms.CharField(label=_("Cheque's bank"), max_length=80, required=False)
    card_last_digits = forms.CharField(
        label=_("Card's last four digits"),
        max_length=4,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "dir": "ltr", "size": 4}),
    )
    card_authorisation = forms.CharField(label=_("Authorisation code"), max_length=32, required=False)

    FIELDSETS = [
        (None, {"fields": ["token", "bill", "amount", "method"]}),
        (_("Cash"), {"fields": ["amount_tendered"]}),
        (_("Cheque"), {"fields": ["cheque_number", "cheque_bank"]}),
        (_("Card"), {"fields": ["card_last_digits", "card_authorisation"]}),
    ]

    def __init__(self, *args, account: ServiceAccount, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("initial", {}).setdefault("token", secrets.token_hex(8).upper())
        super().__init__(*args, **kwargs)
        self.account = account
        self.currency = settings.SELFCARE_CURRENCY
        self.open_bills = list(open_bills_of(account=account))
        self.total_due = sum((b.amount_due for b in self.open_bills), Decimal(0))
        self.fields["bill"].queryset = open_bills_of(account=account)
        self.fields["amount"].help_text = _(
            "For example %(example)s. Empty: the chosen bill's amount due, or the total due."
        ) % {"example": amount_example(self.currency)}

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if not _TOKEN.fullmatch(token):
            raise forms.ValidationError(_("This form has expired: open it again."))
        return token

    def clean(self) -> dict:
        data = super().clean()
        method, bill = data.get("method"), data.get("bill")
        if "amount" not in self.errors and data.get("amount") is None:
            due = bill.amount_due if bill else self.total_due
            if due > 0:
                data["amount"] = due
            else:
                self.add_error("amount", _("Nothing is due: enter the amount to put on the account's credit."))
        # Only the chosen method's details are kept (the others' boxes may hold
        # what was typed before the clerk changed their mind).
        if method != CounterPayment.Method.CHEQUE:
            data["cheque_number"] = data["cheque_bank"] = ""
        else:
            for name in ("cheque_number", "cheque_bank"):
                if not data.get(name, "").strip() and name not in self.errors:
                    self.add_error(name, _("Required for a cheque."))
        if method != CounterPayment.Method.CARD:
            data["card_last_digits"] = data["card_authorisation"] = ""
        elif data.get("card_last_digits") and not re.fullmatch(r"[0-9]{4}", data["card_last_digits"]):
            self.add_error("card_last_digits", _("The last four digits of the card, nothing else."))
        if method != CounterPayment.Method.CASH:
            data["amount_tendered"] = None
        elif data.get("amount_tendered") is not None and data.get("amount") is not None:
            if data["amount_tendered"] < data["amount"]:
                self.add_error("amount_tendered", _("Less than the amount paid."))
        return data


class ReversalForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with the payment and in the audit trail."),
    )


# --- Settlement files -----------------------------------------------------------


class SettlementUploadForm(forms.Form):
    provider = forms.ModelChoiceField(label=_("Provider"), queryset=Provider.objects.none())
    file = forms.FileField(
        label=_("Settlement file (CSV)"),
        help_text=_(
            "Columns reference, amount, currency, paid_at, separated by commas or semicolons, "
            "with or without a header row; UTF-8."
        ),
    )
    period_start = forms.DateField(
        label=_("first day covered"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the day of the file's first payment."),
    )
    period_end = forms.DateField(
        label=_("last day covered"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the day of the file's last payment."),
    )

    def __init__(self, *args, providers: QuerySet[Provider], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = providers

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and start > end:
            self.add_error("period_end", _("The period ends before it starts."))
        return data


# --- Providers ----------------------------------------------------------------


class ProviderForm(forms.ModelForm):
    """Banks and wallets only: an agency's counter is made with its first payment."""

    class Meta:
        model = Provider
        fields = ["name", "kind", "key_id", "is_active"]

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].choices = [
                choice for choice in self.fields["kind"].choices if choice[0] != Provider.Kind.COUNTER
            ]
