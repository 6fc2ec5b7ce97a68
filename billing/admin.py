"""Back office for billing: accounts, plans, consumption and bills.

Amounts are read-only: a correction is a new record (an adjustment or a
payment), never an edit of history.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import PhoneAwareSearchMixin

from .messages import bills_announce
from .models import Bill, BillLine, Consumption, Plan, PlanTier, PrintRequest, ServiceAccount, SmsAlertSubscription
from .numbers import InvalidAccountNumber, account_number_clean
from .services import account_open, bills_with_channels, print_requests_mark_printed


class AccountNumberSearchMixin(PhoneAwareSearchMixin):
    """`123 456 7890` as read over the phone finds account 1234567890."""

    account_number_lookup = "number"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):  # type: ignore[override]
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = account_number_clean(search_term)
        except InvalidAccountNumber:
            return results, may_have_duplicates
        return results | queryset.filter(**{self.account_number_lookup: number}), may_have_duplicates


class PlanTierInline(admin.TabularInline):
    model = PlanTier
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name_fr", "kind", "monthly_fee", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name_fr", "name_ar", "name_en"]
    inlines = [PlanTierInline]


@admin.register(ServiceAccount)
class ServiceAccountAdmin(AccountNumberSearchMixin, admin.ModelAdmin):
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
    raw_id_fields = ["subscriber"]
    readonly_fields = ["number", "kind"]
    # Opening: the number comes from the account sequence and the kind from the plan.
    add_fields = ["subscriber", "plan", "billing_mode", "meter_number", "service_address", "opened_on"]

    @admin.display(description=_("agency"), ordering="subscriber__agency__code")
    def agency(self, obj: ServiceAccount) -> str:
        return obj.subscriber.agency.code

    def get_fields(self, request: HttpRequest, obj: ServiceAccount | None = None) -> list[str]:
        return super().get_fields(request, obj) if obj else self.add_fields

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


@admin.register(Consumption)
class ConsumptionAdmin(AccountNumberSearchMixin, admin.ModelAdmin):
    account_number_lookup = "account__number"
    phone_lookup = "account__subscriber__user__phone"
    list_display = ["account", "period", "quantity", "unit", "meter_index"]
    list_filter = ["unit", "account__kind"]
    list_select_related = ["account"]
    search_fields = ["account__number", "account__meter_number"]
    raw_id_fields = ["account"]
    date_hierarchy = "period"


class BillLineInline(admin.TabularInline):
    model = BillLine
    extra = 0
    can_delete = False
    readonly_fields = ["position", "kind", "tier", "quantity", "unit", "unit_price", "amount"]

    def has_add_permission(self, request: HttpRequest, obj: Bill | None = None) -> bool:
        return False


@admin.register(Bill)
class BillAdmin(AccountNumberSearchMixin, admin.ModelAdmin):
    account_number_lookup = "account__number"
    phone_lookup = "account__subscriber__user__phone"
    list_display = ["number", "account", "subscriber", "period", "due_date", "amount_total", "amount_due", "status"]
    list_filter = ["status", "account__kind", "account__subscriber__agency", "period"]
    list_select_related = ["account", "account__subscriber"]
    search_fields = ["number", "account__number", "account__subscriber__full_name", "account__subscriber__user__phone"]
    raw_id_fields = ["account"]
    date_hierarchy = "period"
    inlines = [BillLineInline]
    readonly_fields = [
        "number", "account", "period", "issue_date", "currency", "amount_lines", "amount_tax",
        "amount_total", "amount_paid", "amount_due", "status", "created_at",
    ]  # fmt: skip

    @admin.display(description=_("subscriber"), ordering="account__subscriber__full_name")
    def subscriber(self, obj: Bill) -> str:
        return obj.account.subscriber.full_name

    actions = ["announce"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bills are issued by the billing services, not typed in

    @admin.action(description=_("Send the bill-issued messages (never twice per channel)"))
    def announce(self, request: HttpRequest, queryset: QuerySet[Bill]) -> None:
        count = bills_announce(bills=bills_with_channels(queryset))
        self.message_user(
            request,
            ngettext("%(count)d message queued.", "%(count)d messages queued.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(PrintRequest)
class PrintRequestAdmin(admin.ModelAdmin):
    """Paper copies to print, per agency: a clerk filters on their own center."""

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

    @admin.action(description=_("Mark as printed"))
    def mark_printed(self, request: HttpRequest, queryset: QuerySet[PrintRequest]) -> None:
        count = print_requests_mark_printed(requests=queryset, printed_by=request.user)
        self.message_user(
            request, ngettext("%(count)d copy printed.", "%(count)d copies printed.", count) % {"count": count}
        )


@admin.register(SmsAlertSubscription)
class SmsAlertSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["account", "started_on", "ended_on"]
    list_filter = ["ended_on"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
