"""Back office for payments: providers and their secrets, payments, the API inbox.

Payments and inbox rows are read-only: a correction is a reversal through the
service, never an edit. A provider's signing secret is shown once, on the page
that follows its creation or rotation, and never stored in a message or a session.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.scoping import GLOBAL, AgencyScopedAdmin

from .models import Allocation, ApiInbox, Payment, Provider
from .services import provider_create, provider_rotation_end, provider_secret_rotate


class ReadOnlyAdmin(AgencyScopedAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _secret_page(request: HttpRequest, *, provider: Provider, secret: str, admin_site: admin.AdminSite) -> HttpResponse:
    response = TemplateResponse(
        request,
        "admin/payments/provider/secret.html",
        {
            **admin_site.each_context(request),
            "title": _("Signing secret of %(name)s") % {"name": provider.name},
            "provider": provider,
            "secret": secret,
            "opts": Provider._meta,
        },
    )
    # The secret must not linger in a cache or the browser's history.
    response["Cache-Control"] = "no-store"
    return response


@admin.register(Provider)
class ProviderAdmin(AgencyScopedAdmin):
    agency_path = GLOBAL  # the operator's partners, no agency's
    list_display = ["name", "kind", "key_id", "is_active", "rotating", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key_id"]
    fields = ["name", "kind", "key_id", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    actions = ["rotate_secret", "end_rotation"]

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> list[str]:
        # The key id is what the provider's systems send: fixed once issued.
        return ["key_id", "created_at"] if obj else ["created_at"]

    @admin.display(description=_("rotation under way"), boolean=True)
    def rotating(self, obj: Provider) -> bool:
        return obj.is_rotating

    def save_model(self, request: HttpRequest, obj: Provider, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name", "kind", "is_active"])
            return
        provider, secret = provider_create(name=obj.name, kind=obj.kind, key_id=obj.key_id, is_active=obj.is_active)
        obj.pk, obj.secret_sealed, obj.created_at = provider.pk, provider.secret_sealed, provider.created_at
        request._provider_secret = secret  # type: ignore[attr-defined]  # for response_add, this request only

    def response_add(self, request: HttpRequest, obj: Provider, post_url_continue=None) -> HttpResponse:
        secret = getattr(request, "_provider_secret", None)
        if secret is None:  # pragma: no cover - save_model always sets it
            return super().response_add(request, obj, post_url_continue)
        return _secret_page(request, provider=obj, secret=secret, admin_site=self.admin_site)

    @admin.action(
        permissions=["change"],
        description=_("Issue a new signing secret (the current one keeps working until the rotation ends)"),
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Provider]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Rotate one provider at a time."), messages.WARNING)
            return None
        provider = queryset.get()
        secret = provider_secret_rotate(provider=provider)
        return _secret_page(request, provider=provider, secret=secret, admin_site=self.admin_site)

    @admin.action(permissions=["change"], description=_("End the rotation: the previous secret stops working"))
    def end_rotation(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = sum(provider_rotation_end(provider=p) for p in queryset)
        self.message_user(
            request,
            ngettext("%(count)d rotation ended.", "%(count)d rotations ended.", count) % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Payments keep their provider; a provider that stops is made inactive.
        return False


class AllocationInline(admin.TabularInline):
    model = Allocation
    fields = ["bill", "amount"]
    readonly_fields = ["bill", "amount"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    agency_path = "account__subscriber__agency"
    list_display = ["receipt_number", "reference", "provider", "account", "amount", "currency", "status", "paid_at"]
    list_filter = ["status", "provider", "channel"]
    list_select_related = ["provider", "account"]
    search_fields = ["receipt_number", "reference", "account__number"]
    date_hierarchy = "paid_at"
    inlines = [AllocationInline]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(ApiInbox)
class ApiInboxAdmin(ReadOnlyAdmin):
    # The providers' traffic, operator-wide; no role grants it to agency staff.
    agency_path = GLOBAL
    list_display = ["received_at", "provider", "method", "path", "status", "response_status"]
    list_filter = ["status", "provider", "method"]
    list_select_related = ["provider"]
    search_fields = ["path", "error"]
    date_hierarchy = "received_at"
    exclude = ["body"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "body"] + ["raw_body"]

    @admin.display(description=_("raw body"))
    def raw_body(self, obj: ApiInbox) -> str:
        return bytes(obj.body).decode("utf-8", errors="backslashreplace")
