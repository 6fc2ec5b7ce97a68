"""Back office for agency staff: find a customer by name, e-mail or phone."""

from __future__ import annotations

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp import admin as otp_totp_admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from .backends import normalize_identifier
from .models import Agency, Subscriber, User
from .scoping import GLOBAL, AgencyScopedAdmin


class PhoneAwareSearchMixin:
    """A clerk types a phone number as the customer says it: `20 000 001`.
    Search for its E.164 form as well as for the raw text."""

    phone_lookup = "phone"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):  # type: ignore[override]
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        normalized = normalize_identifier(search_term)
        if normalized.startswith("+"):
            results |= queryset.filter(**{self.phone_lookup: normalized})
        return results, may_have_duplicates


@admin.register(User)
class UserAdmin(PhoneAwareSearchMixin, AgencyScopedAdmin, DjangoUserAdmin):
    # Staff of the agencies, and the logins of their subscribers.
    agency_path = ("agencies", "subscriber__agency")
    ordering = ["email"]
    list_display = ["email", "phone", "first_name", "last_name", "is_staff", "agency_codes"]
    list_filter = ["is_staff", "is_superuser", "is_active", "agencies", "groups"]
    search_fields = ["email", "phone", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Staff"), {"fields": ("agencies", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "phone", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ["agencies", "groups", "user_permissions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("agencies")

    @admin.display(description=_("agencies"))
    def agency_codes(self, obj: User) -> str:
        return ", ".join(agency.code for agency in obj.agencies.all())


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AgencyScopedAdmin, DjangoGroupAdmin):
    agency_path = GLOBAL  # roles (accounts.roles) are the same in every agency


@admin.register(Agency)
class AgencyAdmin(AgencyScopedAdmin):
    agency_path = "pk"
    list_display = ["code", "name_fr", "name_ar", "city", "opening_hours"]
    search_fields = ["code", "name_fr", "name_ar", "city"]
    list_filter = ["city"]


@admin.register(Subscriber)
class SubscriberAdmin(PhoneAwareSearchMixin, AgencyScopedAdmin):
    agency_path = "agency"
    ordering = ["-pk"]  # the changelist's own default, declared so autocomplete pages are stable
    phone_lookup = "user__phone"
    list_display = ["full_name", "user", "phone", "agency", "preferred_language", "paperless", "created_at"]
    list_filter = ["agency", "preferred_language", "paperless"]
    list_select_related = ["user", "agency"]
    search_fields = ["full_name", "national_id", "user__email", "user__phone", "accounts__number"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("phone number"), ordering="user__phone")
    def phone(self, obj: Subscriber) -> str:
        return obj.user.phone or ""

    def get_fields(self, request: HttpRequest, obj: Subscriber | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        # Who logs in as this customer changes only through a re-link request a
        # supervisor approves (billing.approvals), never by a plain edit.
        return [("login" if f == "user" else f) for f in fields if f != "login"] if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Subscriber | None = None) -> list[str]:
        return [*self.readonly_fields, "login"] if obj else self.readonly_fields

    @admin.display(description=_("login"))
    def login(self, obj: Subscriber) -> str:
        url = reverse("admin:billing_changerequest_relink", args=[obj.pk])
        return format_html('{} · <a href="{}">{}</a>', obj.user, url, _("Request a login re-link"))


# --- django-axes' login records, held to the same rules ---------------------
# Login attempts belong to no agency and no role is granted them (accounts.roles):
# only the operator's superusers read them. Re-registered so the guard test's
# rules hold here too, and so its clean-up action says what it needs.
class AccessAttemptAdmin(AgencyScopedAdmin, axes_admin.AccessAttemptAdmin):
    agency_path = GLOBAL

    @admin.action(description=_("Clean up expired attempts"), permissions=["delete"])
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().cleanup_expired_attempts(request, queryset)


class AccessLogAdmin(AgencyScopedAdmin, axes_admin.AccessLogAdmin):
    agency_path = GLOBAL


class AccessFailureLogAdmin(AgencyScopedAdmin, axes_admin.AccessFailureLogAdmin):
    agency_path = GLOBAL


if admin.site.is_registered(AccessAttempt):  # settings.AXES_ENABLE_ADMIN
    for _model, _model_admin in [
        (AccessAttempt, AccessAttemptAdmin),
        (AccessLog, AccessLogAdmin),
        (AccessFailureLog, AccessFailureLogAdmin),
    ]:
        admin.site.unregister(_model)
        admin.site.register(_model, _model_admin)


# --- Staff TOTP devices (django-otp), held to the same rules ----------------
# A device belongs to a staff user, not to an agency, and no role is granted it:
# only the operator's superusers see them, to delete a lost phone's device (the
# next login enrols again).
class TOTPDeviceAdmin(AgencyScopedAdmin, otp_totp_admin.TOTPDeviceAdmin):
    agency_path = GLOBAL


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
    admin.site.register(TOTPDevice, TOTPDeviceAdmin)
