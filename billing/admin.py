"""Back office for billing: accounts, plans, consumption and bills.

Amounts are read-only: a correction is a new record (an adjustment or a
payment), never an edit of history.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import PhoneAwareSearchMixin
from accounts.backends import normalize_identifier
from accounts.models import Agency, Subscriber, User
from accounts.scoping import GLOBAL, AgencyScopedAdmin
from accounts.selectors import staff_agency_ids
from core.admin_money import MoneyFieldsAdmin
from core.audit import audit_bulk, audited_action
from core.dates import format_cldr_date, month_add
from core.money import babel_locale, format_money, format_quantity, format_unit_price

from . import approvals, pdf, plan_changes, printing, runs
from .messages import bills_announce
from .models import (
    Bill,
    BillLine,
    BillRun,
    BillRunChunk,
    ChangeRequest,
    Consumption,
    Plan,
    PlanChange,
    PlanLevy,
    PlanTier,
    PrintRequest,
    ReadingCorrection,
    ServiceAccount,
    SmsAlertSubscription,
)
from .numbers import InvalidAccountNumber, account_number_clean
from .services import account_open, bills_with_channels, print_requests_mark_printed
from .tasks import bill_run_enqueue


class AccountNumberSearchMixin(PhoneAwareSearchMixin):
    """`100 000 0016` as displayed or read over the phone finds exactly account
    1000000016 (its check digit tells it from a phone number)."""

    account_number_lookup = "number"

    def exact_search_results(self, queryset: QuerySet, search_term: str) -> QuerySet | None:
        try:
            number = account_number_clean(search_term)
        except InvalidAccountNumber:
            return super().exact_search_results(queryset, search_term)
        return queryset.filter(**{self.account_number_lookup: number})


class PlanTierInline(admin.TabularInline):
    model = PlanTier
    extra = 0


class PlanLevyInline(admin.TabularInline):
    model = PlanLevy
    extra = 0


@admin.register(Plan)
class PlanAdmin(AgencyScopedAdmin):
    agency_path = GLOBAL  # the same tariffs in every agency
    list_display = [
        "code",
        "name_fr",
        "kind",
        "monthly_fee",
        "vat_rate",
        "is_active",
        "allows_immediate_change",
        "change_needs_approval",
    ]
    list_filter = ["kind", "is_active", "allows_immediate_change", "change_needs_approval"]
    search_fields = ["code", "name_fr", "name_ar", "name_en"]
    inlines = [PlanTierInline, PlanLevyInline]


@admin.register(ServiceAccount)
class ServiceAccountAdmin(AccountNumberSearchMixin, AgencyScopedAdmin):
    agency_path = "subscriber__agency"
    phone_lookup = "subscriber__user__phone"
    list_display = ["display_number", "subscriber", "kind", "billing_mode", "status", "plan", "agency"]
    list_filter = ["kind", "status", "billing_mode", "subscriber__agency"]
    list_select_related = ["subscriber", "subscriber__agency", "plan"]
    search_fields = [
        "number",
        "meter_number",
        "subscriber__full_name",
        "subscriber__user__phone",
        "subscriber__user__email",
    ]
    autocomplete_fields = ["subscriber"]
    # Whose contract it is changes only by a transfer a supervisor approves.
    readonly_fields = ["number", "kind", "holder"]
    # Opening: the number comes from the account sequence and the kind from the plan.
    add_fields = ["subscriber", "plan", "billing_mode", "meter_number", "service_address", "opened_on"]

    @admin.display(description=_("agency"), ordering="subscriber__agency__code")
    def agency(self, obj: ServiceAccount) -> str:
        return obj.subscriber.agency.code

    change_fields = [
        "number", "holder", "kind", "plan", "billing_mode", "status", "meter_number", "service_address", "opened_on",
        "billing_cycle",
    ]  # fmt: skip

    def get_fields(self, request: HttpRequest, obj: ServiceAccount | None = None) -> list[str]:
        return self.change_fields if obj else self.add_fields

    @admin.display(description=_("subscriber"))
    def holder(self, obj: ServiceAccount) -> str:
        url = reverse("admin:billing_changerequest_transfer", args=[obj.pk])
        return format_html('{} · <a href="{}">{}</a>', obj.subscriber, url, _("Request a transfer of contract"))

    def get_readonly_fields(self, request: HttpRequest, obj: ServiceAccount | None = None) -> list[str]:
        return self.readonly_fields if obj else []

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.name == "plan" and request.resolver_match and request.resolver_match.url_name.endswith("_add"):
            kwargs["queryset"] = Plan.objects.filter(is_active=True)  # account_open refuses retired plans
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ServiceAccount, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        opened = account_open(
            subscriber=obj.subscriber, plan=obj.plan, meter_number=obj.meter_number,
            service_address=obj.service_address, billing_mode=obj.billing_mode, opened_on=obj.opened_on,
        )  # fmt: skip
        # The admin's own redirect and log entry need the saved row.
        obj.pk, obj.number, obj.kind = opened.pk, opened.number, opened.kind


class ReadingCorrectionInline(admin.TabularInline):
    model = ReadingCorrection
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "corrected_at", "corrected_by", "original_quantity", "original_meter_index",
        "corrected_quantity", "corrected_meter_index", "reason",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: Consumption | None = None) -> bool:
        return False


@admin.register(Consumption)
class ConsumptionAdmin(AccountNumberSearchMixin, AgencyScopedAdmin):
    agency_path = "account__subscriber__agency"
    account_number_lookup = "account__number"
    phone_lookup = "account__subscriber__user__phone"
    list_display = ["account", "period", "quantity", "unit", "meter_index"]
    list_filter = ["unit", "account__kind"]
    list_select_related = ["account"]
    search_fields = ["account__number", "account__meter_number"]
    autocomplete_fields = ["account"]
    date_hierarchy = "period"
    inlines = [ReadingCorrectionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Consumption | None = None) -> list[str]:
        # A reading is corrected with a reason (and its old value kept), never edited.
        return ["account", "period", "unit", "quantity", "meter_index", "correct"] if obj else []

    def get_fields(self, request: HttpRequest, obj: Consumption | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        return [*(f for f in fields if f != "correct"), "correct"] if obj else [f for f in fields if f != "correct"]

    @admin.display(description=_("correction"))
    def correct(self, obj: Consumption) -> str:
        url = reverse("admin:billing_consumption_correct", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Correct this reading"))

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path(
                "<int:pk>/correct/", self.admin_site.admin_view(self.correct_view), name="billing_consumption_correct"
            ),
            *super().get_urls(),
        ]

    def correct_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        consumption = self.get_object(request, str(pk))
        if not request.user.has_perm("billing.add_readingcorrection"):
            raise PermissionDenied
        form = ReadingCorrectionForm(
            request.POST or None, initial={"quantity": consumption.quantity, "meter_index": consumption.meter_index}
        )
        if form.is_valid():
            try:
                approvals.reading_correct(
                    consumption=consumption, quantity=form.cleaned_data["quantity"],
                    meter_index=form.cleaned_data["meter_index"], reason=form.cleaned_data["reason"],
                    corrected_by=request.user,
                )  # fmt: skip
            except approvals.ChangeRefused as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("The reading was corrected; the previous value is kept."))
                return redirect("admin:billing_consumption_change", consumption.pk)
        return _form_page(self, request, form, obj=consumption, title=_("Correct a meter reading"))


def bill_line_text(line: BillLine, currency: str) -> str:
    """A bill line in words, as a clerk reads it out: item, tier, quantity by unit price."""
    text = line.title
    if line.quantity is None:
        return text
    if line.kind == BillLine.Kind.PRORATION:
        days = int(line.quantity)
        quantity = ngettext("%(n)s day", "%(n)s days", days) % {"n": days}
    else:
        quantity = f"{format_quantity(line.quantity)} {line.get_unit_display()}".strip()
    if line.unit_price is None:
        return _("%(item)s: %(quantity)s") % {"item": text, "quantity": quantity}
    price = format_unit_price(line.unit_price, currency)
    return _("%(item)s: %(quantity)s × %(price)s") % {"item": text, "quantity": quantity, "price": price}


@admin.register(Bill)
class BillAdmin(MoneyFieldsAdmin, AccountNumberSearchMixin, AgencyScopedAdmin):
    agency_path = "account__subscriber__agency"
    account_number_lookup = "account__number"
    phone_lookup = "account__subscriber__user__phone"
    list_display = ["number", "account", "subscriber", "period", "due_date", "amount_total", "amount_due", "status"]
    list_filter = ["status", "account__kind", "account__subscriber__agency", "period", "is_estimated"]
    list_select_related = ["account", "account__subscriber"]
    search_fields = ["number", "account__number", "account__subscriber__full_name", "account__subscriber__user__phone"]
    date_hierarchy = "period"
    money_fields = {
        "amount_lines": "currency", "amount_tax": "currency", "amount_total": "currency", "amount_paid": "currency",
        "amount_due": "currency",
    }  # fmt: skip
    readonly_fields = [
        "number", "account", "subscriber", "period", "issue_date", "bill_lines", "amount_lines", "amount_tax",
        "amount_total", "amount_paid", "amount_due", "status", "is_estimated", "created_at",
    ]  # fmt: skip
    fields = [
        "number", "account", "subscriber", "period", "issue_date", "due_date", "bill_lines", "amount_lines",
        "amount_tax", "amount_total", "amount_paid", "amount_due", "status", "is_estimated", "created_at",
    ]  # fmt: skip

    @admin.display(description=_("bill lines"))
    def bill_lines(self, obj: Bill) -> str:
        # Read-only and in bill order, each line in words with its amount (an
        # inline of raw columns showed "tier 2, 35.000, 0.293000" and the row "266#2").
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td class="amount">{}</td></tr>',
            ((bill_line_text(line, obj.currency), format_money(line.amount, obj.currency))
             for line in obj.lines.select_related("levy").order_by("position")),
        )  # fmt: skip
        return format_html('<table class="bill-lines"><tbody>{}</tbody></table>', rows)

    @admin.display(description=_("subscriber"), ordering="account__subscriber__full_name")
    def subscriber(self, obj: Bill) -> str:
        return obj.account.subscriber.full_name

    actions = ["announce"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bills are issued by the billing services, not typed in

    def has_announce_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.announce_bill")

    @admin.action(description=_("Send the bill-issued messages (never twice per channel)"), permissions=["announce"])
    @audited_action
    def announce(self, request: HttpRequest, queryset: QuerySet[Bill]) -> None:
        count = bills_announce(bills=bills_with_channels(queryset))
        self.message_user(
            request,
            ngettext("%(count)d message queued.", "%(count)d messages queued.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(PrintRequest)
class PrintRequestAdmin(AgencyScopedAdmin):
    """Paper copies to print, per agency: a clerk sees their own center's."""

    agency_path = "agency"

    list_display = ["bill", "subscriber", "agency", "status", "requested_at", "printed_at", "printed_by"]
    list_filter = ["status", "agency"]
    list_select_related = ["bill", "bill__account__subscriber", "agency", "printed_by"]
    search_fields = ["bill__number", "bill__account__number", "bill__account__subscriber__full_name"]
    readonly_fields = ["bill", "agency", "requested_by", "requested_at", "status", "printed_at", "printed_by"]
    actions = ["mark_printed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("subscriber"))
    def subscriber(self, obj: PrintRequest) -> str:
        return obj.bill.account.subscriber.full_name

    @admin.action(description=_("Mark as printed"), permissions=["change"])
    @audited_action
    def mark_printed(self, request: HttpRequest, queryset: QuerySet[PrintRequest]) -> None:
        count = print_requests_mark_printed(requests=queryset, printed_by=request.user)
        self.message_user(
            request, ngettext("%(count)d copy printed.", "%(count)d copies printed.", count) % {"count": count}
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # The "Print paper copies" link, for those who may mark copies printed.
        extra_context = {**(extra_context or {}), "can_print": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path("print/", self.admin_site.admin_view(self.print_view), name="billing_printrequest_print"),
            *super().get_urls(),
        ]

    def print_view(self, request: HttpRequest) -> HttpResponse:
        """The waiting copies per agency and period; each batch prints as one PDF
        (downloaded) and is marked printed."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        # The agencies this clerk works for, as the agency admin scopes them.
        agencies = self.admin_site._registry[Agency].get_queryset(request)
        if request.method == "POST":
            form = PaperBatchForm(request.POST, agencies=agencies)
            if not form.is_valid():
                self.message_user(request, _("Choose one of your agencies and a period."), messages.ERROR)
                return redirect("admin:billing_printrequest_print")
            agency, period = form.cleaned_data["agency"], form.cleaned_data["period"]
            try:
                batch = printing.paper_copies_print(agency=agency, period=period, printed_by=request.user)
            except printing.NothingToPrint as exc:
                self.message_user(request, exc.message, messages.WARNING)
                return redirect("admin:billing_printrequest_print")
            audit_bulk(model=PrintRequest, pks=batch.request_ids, changes={}, extra={"admin_action": "print_batch"})
            response = HttpResponse(batch.pdf, content_type=pdf.MIMETYPE)
            filename = f"paper-copies-{agency.code}-{period:%Y-%m}.pdf"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": _("Print paper copies"),
            "opts": self.model._meta,
            "batches": printing.print_batches_pending(agencies=agencies),
            "batch_max": settings.SELFCARE_PRINT_BATCH_MAX,
        }
        return TemplateResponse(request, "admin/billing/printrequest/print.html", context)


@admin.register(SmsAlertSubscription)
class SmsAlertSubscriptionAdmin(AgencyScopedAdmin):
    agency_path = "account__subscriber__agency"
    list_display = ["account", "started_on", "ended_on"]
    list_filter = ["ended_on"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    autocomplete_fields = ["account"]
    list_select_related = ["account"]


# --- Identity and money: asked with a reason, decided by a supervisor -------


class PaperBatchForm(forms.Form):
    """What the print page posts: one of the clerk's agencies and a month (2026-09)."""

    agency = forms.ModelChoiceField(queryset=Agency.objects.none())
    period = forms.DateField(input_formats=["%Y-%m"])

    def __init__(self, *args, agencies: QuerySet[Agency], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = agencies  # type: ignore[attr-defined]


class ReasonField(forms.CharField):
    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, **kwargs)


class ReadingCorrectionForm(forms.Form):
    quantity = forms.DecimalField(label=_("Corrected quantity"), max_digits=14, decimal_places=3, min_value=0)
    meter_index = forms.DecimalField(
        label=_("Corrected meter index"), max_digits=14, decimal_places=3, min_value=0, required=False
    )
    reason = ReasonField()


class LoginRelinkForm(forms.Form):
    new_login = forms.CharField(
        label=_("New login"), max_length=254,
        help_text=_("The e-mail address or phone number the subscriber signed up with again."),
    )  # fmt: skip
    reason = ReasonField()

    def clean_new_login(self) -> User:
        identifier = normalize_identifier(self.cleaned_data["new_login"])
        field = "phone" if identifier.startswith("+") else "email__iexact"
        user = User.objects.filter(**{field: identifier}).first()
        if user is None:
            raise forms.ValidationError(_("No login has this e-mail address or phone number."))
        return user


class TransferForm(forms.Form):
    reason = ReasonField()

    def __init__(self, *args, subscribers: QuerySet[Subscriber], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The same autocomplete as an admin foreign key, searching the clerk's own subscribers.
        self.fields = {
            "new_subscriber": forms.ModelChoiceField(
                label=_("New subscriber"), queryset=subscribers,
                widget=AutocompleteSelect(ChangeRequest._meta.get_field("to_subscriber"), admin.site),
            ),
            **self.fields,
        }  # fmt: skip


def _form_page(model_admin: admin.ModelAdmin, request: HttpRequest, form: forms.Form, *, obj, title) -> HttpResponse:  # type: ignore[no-untyped-def]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": str(obj),
        "form": form,
        "object": obj,
        "opts": model_admin.model._meta,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/billing/reasoned_change_form.html", context)


@admin.register(ChangeRequest)
class ChangeRequestAdmin(AgencyScopedAdmin):
    """Transfers and login re-links waiting for a supervisor of the agency."""

    agency_path = "agency"
    list_display = ["requested_at", "kind", "target", "change", "agency", "requested_by", "status", "decided_by"]
    list_filter = ["status", "kind", "agency"]
    list_select_related = [
        "agency", "requested_by", "decided_by", "subscriber", "account", "from_user", "to_user",
        "from_subscriber", "to_subscriber",
    ]  # fmt: skip
    search_fields = ["subscriber__full_name", "account__number", "reason"]
    readonly_fields = [
        "kind", "agency", "subscriber", "from_user", "to_user", "account", "from_subscriber", "to_subscriber",
        "reason", "status", "requested_by", "requested_at", "decided_by", "decided_at",
    ]  # fmt: skip
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # asked from the subscriber's or the account's page, with a reason

    def has_change_permission(self, request: HttpRequest, obj: ChangeRequest | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ChangeRequest | None = None) -> bool:
        return False

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.approve_changerequest")

    @admin.display(description=_("for"))
    def target(self, obj: ChangeRequest) -> str:
        return str(obj.subscriber or obj.account)

    @admin.display(description=_("change"))
    def change(self, obj: ChangeRequest) -> str:
        if obj.kind == ChangeRequest.Kind.LOGIN_RELINK:
            return f"{obj.from_user} → {obj.to_user}"
        return f"{obj.from_subscriber} → {obj.to_subscriber}"

    @admin.action(description=_("Approve and apply the selected requests"), permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[ChangeRequest]) -> None:
        self._decide(request, queryset, approvals.change_request_approve)

    @admin.action(description=_("Reject the selected requests"), permissions=["approve"])
    def reject(self, request: HttpRequest, queryset: QuerySet[ChangeRequest]) -> None:
        self._decide(request, queryset, approvals.change_request_reject)

    def _decide(self, request: HttpRequest, queryset: QuerySet[ChangeRequest], decide) -> None:  # type: ignore[no-untyped-def]
        done = 0
        for change_request in queryset:
            try:
                decide(change_request=change_request, decided_by=request.user)
                done += 1
            except approvals.ChangeRefused as exc:
                self.message_user(request, f"{change_request}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(
                request, ngettext("%(count)d request decided.", "%(count)d requests decided.", done) % {"count": done}
            )

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view
        return [
            path("relink/<int:pk>/", view(self.relink_view), name="billing_changerequest_relink"),
            path("transfer/<int:pk>/", view(self.transfer_view), name="billing_changerequest_transfer"),
            *super().get_urls(),
        ]

    def _target(self, request: HttpRequest, model: type, pk: int):  # type: ignore[no-untyped-def]
        # Found through its own admin, so another agency's subscriber or account is a 404.
        target = self.admin_site._registry[model].get_object(request, str(pk))
        if not request.user.has_perm("billing.add_changerequest"):
            raise PermissionDenied
        return target

    def relink_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        subscriber = self._target(request, Subscriber, pk)
        form = LoginRelinkForm(request.POST or None)
        if form.is_valid():
            try:
                approvals.subscriber_login_relink_request(
                    subscriber=subscriber, new_login=form.cleaned_data["new_login"],
                    reason=form.cleaned_data["reason"], requested_by=request.user,
                )  # fmt: skip
            except approvals.ChangeRefused as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("The re-link waits for a supervisor's approval."))
                return redirect("admin:accounts_subscriber_change", subscriber.pk)
        return _form_page(self, request, form, obj=subscriber, title=_("Request a login re-link"))

    def transfer_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        account = self._target(request, ServiceAccount, pk)
        subscribers = self.admin_site._registry[Subscriber].get_queryset(request)
        form = TransferForm(request.POST or None, subscribers=subscribers)
        if form.is_valid():
            try:
                approvals.account_transfer_request(
                    account=account, new_subscriber=form.cleaned_data["new_subscriber"],
                    reason=form.cleaned_data["reason"], requested_by=request.user,
                )  # fmt: skip
            except approvals.ChangeRefused as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("The transfer waits for a supervisor's approval."))
                return redirect("admin:billing_serviceaccount_change", account.pk)
        return _form_page(self, request, form, obj=account, title=_("Request a transfer of contract"))


@admin.register(ReadingCorrection)
class ReadingCorrectionAdmin(AgencyScopedAdmin):
    agency_path = "consumption__account__subscriber__agency"
    list_display = ["corrected_at", "account", "consumption", "original_quantity", "corrected_quantity", "corrected_by"]
    list_select_related = ["consumption__account", "corrected_by"]
    search_fields = ["consumption__account__number", "reason"]
    readonly_fields = [
        "account", "consumption", "original_quantity", "original_meter_index", "corrected_quantity",
        "corrected_meter_index", "reason", "corrected_by", "corrected_at",
    ]  # fmt: skip

    @admin.display(description=_("account"), ordering="consumption__account__number")
    def account(self, obj: ReadingCorrection) -> str:
        return obj.consumption.account.display_number

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # corrected from the reading's page, by approvals.reading_correct

    def has_change_permission(self, request: HttpRequest, obj: ReadingCorrection | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReadingCorrection | None = None) -> bool:
        return False


# --- Plan changes: asked by subscribers, approved by supervisors ------------


class PlanChangeRejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with the change; the subscriber is told the change was not approved."),
    )  # fmt: skip


class PlanChangeStatusFilter(admin.SimpleListFilter):
    """Open changes first: what a supervisor comes here for."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", _("Not yet in effect")), *PlanChange.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PlanChange]) -> QuerySet[PlanChange]:
        if self.value() == "open":
            return queryset.filter(status__in=PlanChange.OPEN_STATUSES)
        if self.value() in PlanChange.Status.values:
            return queryset.filter(status=self.value())
        return queryset


@admin.register(PlanChange)
class PlanChangeAdmin(MoneyFieldsAdmin, AccountNumberSearchMixin, AgencyScopedAdmin):
    """Plan changes of the staff member's agencies; those waiting for approval are
    approved or rejected here (billing.plan_changes), everything else is read-only."""

    agency_path = "account__subscriber__agency"
    account_number_lookup = "account__number"
    phone_lookup = "account__subscriber__user__phone"
    list_display = [
        "requested_at", "account", "subscriber", "from_plan", "to_plan", "mode", "effective_date", "status",
        "proration_amount", "decided_by",
    ]  # fmt: skip
    list_filter = [PlanChangeStatusFilter, "mode", "kind", "account__subscriber__agency"]
    money_fields = {"proration_amount": "currency"}
    list_select_related = ["account", "account__subscriber", "from_plan", "to_plan", "decided_by"]
    search_fields = ["account__number", "account__subscriber__full_name", "account__subscriber__user__phone"]
    date_hierarchy = "requested_at"
    readonly_fields = [
        "account", "kind", "from_plan", "to_plan", "mode", "status", "effective_date", "requested_by",
        "requested_at", "decided_by", "decided_at", "applied_at", "reason", "currency", "proration_amount",
        "bill_period",
    ]  # fmt: skip
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # asked by the subscriber on their plan page

    def has_change_permission(self, request: HttpRequest, obj: PlanChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PlanChange | None = None) -> bool:
        return False

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.approve_planchange")

    @admin.display(description=_("subscriber"), ordering="account__subscriber__full_name")
    def subscriber(self, obj: PlanChange) -> str:
        return obj.account.subscriber.full_name

    @admin.action(description=_("Approve the selected plan changes"), permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[PlanChange]) -> None:
        self._decide(request, queryset, lambda change: plan_changes.plan_change_approve(
            change=change, decided_by=request.user
        ))  # fmt: skip

    @admin.action(description=_("Reject the selected plan changes"), permissions=["approve"])
    def reject(self, request: HttpRequest, queryset: QuerySet[PlanChange]) -> HttpResponse | None:
        # First a page asking for the reason, then the rejection.
        form = PlanChangeRejectForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": _("Reject plan changes"),
                "opts": self.model._meta,
                "form": form,
                "changes": queryset,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/billing/planchange/reject.html", context)
        reason = form.cleaned_data["reason"]
        self._decide(request, queryset, lambda change: plan_changes.plan_change_reject(
            change=change, decided_by=request.user, reason=reason
        ))  # fmt: skip
        return None

    def _decide(self, request: HttpRequest, queryset: QuerySet[PlanChange], decide) -> None:  # type: ignore[no-untyped-def]
        done = 0
        for change in queryset.select_related("account"):
            try:
                decide(change)
                done += 1
            except plan_changes.PlanChangeRefused as exc:
                self.message_user(request, f"{change.account}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%(count)d plan change decided.", "%(count)d plan changes decided.", done) % {"count": done},
            )


# --- Bill runs ---------------------------------------------------------------


class BillRunStartForm(forms.ModelForm):
    """Start a bill run: a month, and a scope the member of staff may bill."""

    period = forms.CharField(
        label=_("Month"), max_length=7, help_text=_("YYYY-MM, e.g. 2026-11."),
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-11"}),
    )  # fmt: skip

    class Meta:
        model = BillRun
        fields = ["period", "agency", "billing_cycle", "issue_date"]

    # Set by BillRunAdmin.get_form: None for staff who reach every agency.
    agency_ids: frozenset[int] | None = None

    def clean_period(self):  # type: ignore[no-untyped-def]
        try:
            return runs.period_check(runs.period_parse(self.cleaned_data["period"]))
        except runs.BillRunRefused as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_billing_cycle(self) -> int | None:
        cycle = self.cleaned_data.get("billing_cycle")
        if cycle is not None and not 1 <= cycle <= 31:
            raise forms.ValidationError(_("A billing cycle is a number from 1 to 31."))
        return cycle

    def clean(self):  # type: ignore[no-untyped-def]
        cleaned = super().clean()
        agency = cleaned.get("agency")
        if self.agency_ids is not None and (agency is None or agency.pk not in self.agency_ids):
            # Billing every agency is for the operator's superusers.
            self.add_error("agency", _("Choose one of your agencies."))
        if not cleaned.get("issue_date"):
            cleaned["issue_date"] = timezone.localdate()
        return cleaned


class BillRunChunkInline(admin.TabularInline):
    """The chunks that failed, with their error: resuming the run retries them."""

    model = BillRunChunk
    extra = 0
    can_delete = False
    verbose_name_plural = _("failed chunks")
    fields = readonly_fields = ["first_account_id", "last_account_id", "attempts", "accounts", "error"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BillRunChunk]:
        return super().get_queryset(request).filter(status=BillRunChunk.Status.FAILED)

    def has_add_permission(self, request: HttpRequest, obj: BillRun | None = None) -> bool:
        return False


@admin.register(BillRun)
class BillRunAdmin(AgencyScopedAdmin):
    """Bill runs: started here (the add page is "start a bill run"), followed on
    their page, whose progress bar refreshes while the run goes on."""

    agency_path = "agency"  # a run of every agency: superusers and auditors only
    form = BillRunStartForm
    # already_billed: a re-run that found every account billed is otherwise a row of zeros.
    list_display = ["period_display", "scope_display", "status", "progress", "billed", "estimated", "already_billed",
                    "skipped", "failed", "created_by", "started_at", "finished_at"]  # fmt: skip
    list_filter = ["status", "agency"]
    list_select_related = ["agency", "created_by"]
    date_hierarchy = "period"
    inlines = [BillRunChunkInline]
    actions = ["resume"]
    change_form_template = "admin/billing/billrun/change_form.html"
    readonly_fields = [
        "period_display", "scope_display", "issue_date", "status", "progress_bar", "accounts_in_scope", "billed", "estimated",
        "already_billed", "skipped", "failed", "chunks_total", "chunks_done", "errors", "skipped_accounts",
        "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip

    def get_fields(self, request: HttpRequest, obj: BillRun | None = None) -> list[str]:
        return self.readonly_fields if obj else ["period", "agency", "billing_cycle", "issue_date"]

    def get_readonly_fields(self, request: HttpRequest, obj: BillRun | None = None) -> list[str]:
        return self.readonly_fields if obj else []

    def get_inlines(self, request: HttpRequest, obj: BillRun | None):  # type: ignore[no-untyped-def]
        return self.inlines if obj else []

    def get_form(self, request: HttpRequest, obj: BillRun | None = None, change: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            agency_ids = staff_agency_ids(request.user)
            form = type(form.__name__, (form,), {"agency_ids": agency_ids})
            if agency_ids is not None:
                # "Empty: every agency" is for superusers: staff limited to agencies
                # choose one of theirs, and the one they have is already chosen.
                agency = form.base_fields["agency"]
                agency.required, agency.empty_label, agency.help_text = True, None, ""
                if len(agency_ids) == 1:
                    agency.initial = next(iter(agency_ids))
            form.base_fields["period"].initial = f"{month_add(timezone.localdate(), -1):%Y-%m}"
            form.base_fields["issue_date"].initial = timezone.localdate()
            form.base_fields["issue_date"].required = False
        return form

    def has_change_permission(self, request: HttpRequest, obj: BillRun | None = None) -> bool:
        return False  # a run is followed, never edited

    def has_delete_permission(self, request: HttpRequest, obj: BillRun | None = None) -> bool:
        return False  # its bills stay; so does the record of how they were made

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_billrun")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        # One button that says what it does: "save and add another" has no meaning for a run.
        context = {"title": _("Start a bill run"), "show_save_and_add_another": False, "show_save_and_continue": False}
        return super().add_view(request, form_url, {**context, **(extra_context or {})})

    def save_model(self, request: HttpRequest, obj: BillRun, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        run = runs.bill_run_start(
            period=obj.period, agency=obj.agency, billing_cycle=obj.billing_cycle, created_by=request.user,
            issue_date=obj.issue_date or None,
        )  # fmt: skip
        bill_run_enqueue(run=run)
        # The admin's own redirect and log entry need the saved row.
        obj.pk, obj.status = run.pk, run.status

    def response_add(self, request: HttpRequest, obj: BillRun, post_url_continue: str | None = None) -> HttpResponse:
        self.message_user(request, _("The bill run has started; this page follows it."), messages.SUCCESS)
        return redirect("admin:billing_billrun_change", obj.pk)

    # A run bills a month: its first day ("1 novembre 2026") read as a due date.
    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: BillRun) -> str:
        return format_cldr_date(obj.period, "LLLL y", babel_locale())

    # BillRun.scope is a property: without a label the admin titled it "Scope" in every language.
    @admin.display(description=_("scope"))
    def scope_display(self, obj: BillRun) -> str:
        return obj.scope

    @admin.display(description=_("progress"))
    def progress(self, obj: BillRun) -> str:
        return f"{obj.progress_percent} %"

    @admin.display(description=_("progress"))
    def progress_bar(self, obj: BillRun) -> str:
        return format_html(
            '<progress value="{}" max="100" data-testid="run-progress">{} %</progress> {} % · {}',
            obj.progress_percent, obj.progress_percent, obj.progress_percent,
            ngettext("%(done)s of %(total)s chunk", "%(done)s of %(total)s chunks", obj.chunks_total)
            % {"done": obj.chunks_done, "total": obj.chunks_total},
        )  # fmt: skip

    @admin.display(description=_("skipped accounts (no reading, no history)"))
    def skipped_accounts(self, obj: BillRun) -> str:
        if not obj.is_over() or not obj.skipped:
            return "—"
        accounts = runs.bill_run_skipped_accounts(run=obj, limit=50)
        links = format_html_join(
            ", ", '<a href="{}">{}</a>',
            ((reverse("admin:billing_serviceaccount_change", args=[a.pk]), a.display_number) for a in accounts),
        )  # fmt: skip
        more = obj.skipped - len(accounts)
        return format_html("{}{}", links, f" (+{more})" if more > 0 else "")

    @admin.action(description=_("Resume: retry the failed and unfinished chunks"), permissions=["resume"])
    @audited_action
    def resume(self, request: HttpRequest, queryset: QuerySet[BillRun]) -> None:
        chunks = 0
        for run in queryset:
            if runs.bill_run_resume(run=run):
                chunks += bill_run_enqueue(run=run)
        self.message_user(
            request, ngettext("%(count)d chunk queued.", "%(count)d chunks queued.", chunks) % {"count": chunks}
        )


# The overdue ladder's and technician visits' admins live beside their services.
from . import dunning_admin  # noqa: E402,F401
