"""The audit trail (read-only, scoped) and the Customer 360 pages, in the admin."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Agency, User
from accounts.scoping import AgencyScopedAdmin
from accounts.selectors import staff_agency_ids
from core.audit import CUSTOMER_360_PERMISSIONS, audit_record_access
from core.money import format_money

from .models import Customer
from .selectors import customer_360, customer_search


class AgencyFilter(admin.SimpleListFilter):
    title = _("agency")
    parameter_name = "agency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[int, str]]:
        agency_ids = staff_agency_ids(request.user)  # type: ignore[arg-type]
        agencies = Agency.objects.all() if agency_ids is None else Agency.objects.filter(pk__in=agency_ids)
        return [(a.pk, str(a)) for a in agencies]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        return queryset.filter(additional_data__agency_id=int(value)) if value and value.isdigit() else queryset


class StaffUserFilter(admin.SimpleListFilter):
    title = _("staff user")
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[int, str]]:
        return list(User.objects.filter(is_staff=True).order_by("email").values_list("pk", "email"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        return queryset.filter(actor_id=int(value)) if value and value.isdigit() else queryset


class _FreeValueFilter(admin.SimpleListFilter):
    """A filter set by a link (`?object_id=12`), with no list of choices to show."""

    lookup: str

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        return []

    def has_output(self) -> bool:
        return True  # the admin applies only the filters it shows

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        return queryset.filter(**{self.lookup: int(value)}) if value and value.isdigit() else queryset


class ObjectIdFilter(_FreeValueFilter):
    title = _("object id")
    parameter_name = "object_id"
    lookup = "object_id"


class SubscriberFilter(_FreeValueFilter):
    title = _("subscriber")
    parameter_name = "subscriber"
    lookup = "additional_data__subscriber_id"


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(AgencyScopedAdmin, AuditlogLogEntryAdmin):
    """The audit trail: read by auditors (every agency) and supervisors (theirs);
    written by the application only. No one, not even a superuser, adds, edits
    or deletes an entry here: the permissions below say no whatever the groups."""

    # Where an entry's agency is (the mixin scopes by it): a supervisor reads their
    # agencies' entries; auditors and superusers every one. An entry of no agency
    # (a plan, a staff account) is for them only.
    agency_path = "additional_data__agency_id"

    list_display = ["created", "resource_url", "action", "msg_short", "actor_display", "remote_addr"]
    list_filter = [
        "action",
        StaffUserFilter,
        AgencyFilter,
        ResourceTypeFilter,
        ObjectIdFilter,
        SubscriberFilter,
        ("timestamp", admin.DateFieldListFilter),
    ]
    search_fields = ["object_repr", "actor_email", "object_pk"]
    readonly_fields = ["created", "resource_url", "action", "actor_display", "remote_addr", "msg", "additional_data"]
    fieldsets = [
        (None, {"fields": ["created", "actor_display", "remote_addr", "resource_url", "additional_data"]}),
        (_("Changes"), {"fields": ["action", "msg"]}),
    ]
    actions = None

    @admin.display(description=_("by"))
    def actor_display(self, obj: LogEntry) -> str:
        return str(obj.actor or obj.actor_email or "—")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(AgencyScopedAdmin):
    """Customer 360: a search page and one page per customer, in the admin's look."""

    # Its pages scope themselves through backoffice.selectors (staff_agency_ids).
    agency_path = "agency"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and user.has_perms(CUSTOMER_360_PERMISSIONS))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """The search page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.get("q", "")
        found = customer_search(user=request.user, query=query)  # type: ignore[arg-type]
        if found.exact is not None:
            return redirect("admin:backoffice_customer_change", found.exact.pk)
        context = self._context(request, title=_("Customer 360"), query=query, results=found.results)
        return TemplateResponse(request, "backoffice/customer_search.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The customer's page."""
        if not (object_id.isascii() and object_id.isdigit() and len(object_id) < 19):
            raise Http404  # beyond a bigint is no customer either, and no 500
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = customer_360(user=request.user, subscriber_id=int(object_id))  # type: ignore[arg-type]
        # Personal data was read: the trail says who looked, and from where.
        audit_record_access(instance=data.subscriber)
        currency = settings.SELFCARE_CURRENCY
        for account in data.accounts:
            account.balance_display = format_money(account.balance, currency)  # type: ignore[attr-defined]
        for bill in [*data.open_bills, *data.recent_bills]:
            bill.amount_due_display = format_money(bill.amount_due, bill.currency)  # type: ignore[attr-defined]
            bill.amount_total_display = format_money(bill.amount_total, bill.currency)  # type: ignore[attr-defined]
        context = self._context(
            request,
            title=data.subscriber.full_name,
            customer=data,
            balance_display=format_money(data.balance, currency),
            audit_url=reverse("admin:auditlog_logentry_changelist") + f"?subscriber={data.subscriber.pk}",
            subscriber_admin_url=reverse("admin:accounts_subscriber_change", args=[data.subscriber.pk]),
        )
        return TemplateResponse(request, "backoffice/customer_detail.html", context)
