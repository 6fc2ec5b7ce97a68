"""Back office for billing: accounts, plans, consumption and bills.

Amounts are read-only: a correction is a new record (an adjustment or a
payment), never an edit of history.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin import PhoneAwareSearchMixin

from .models import Bill, BillLine, Consumption, Plan, PlanTier, ServiceAccount
from .numbers import InvalidAccountNumber, account_number_clean


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
    readonly_fields = ["number"]

    @admin.display(description=_("agency"), ordering="subscriber__agency__code")
    def agency(self, obj: ServiceAccount) -> str:
        return obj.subscriber.agency.code


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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bills are issued by the billing services, not typed in
