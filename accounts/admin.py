"""Back office for agency staff: find a customer by name, e-mail or phone."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import services
from .backends import normalize_identifier
from .models import Agency, ChannelVerification, ContactChannel, Subscriber, User


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
class UserAdmin(PhoneAwareSearchMixin, DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "phone", "first_name", "last_name", "is_staff", "agency"]
    list_filter = ["is_staff", "is_superuser", "is_active", "agency", "groups"]
    list_select_related = ["agency"]
    search_fields = ["email", "phone", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Staff"), {"fields": ("agency", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "phone", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["code", "name_fr", "name_ar", "city", "opening_hours"]
    search_fields = ["code", "name_fr", "name_ar", "city"]
    list_filter = ["city"]


@admin.register(Subscriber)
class SubscriberAdmin(PhoneAwareSearchMixin, admin.ModelAdmin):
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


class ChannelAdminForm(forms.ModelForm):
    """At the counter: the clerk registers a number (a code goes out at once),
    then types the code the subscriber reads from their phone."""

    code = forms.CharField(
        label=_("Code read out by the subscriber"), required=False, max_length=12,
        help_text=_("Leave empty to only save. A new channel receives its code when saved."),
    )  # fmt: skip

    class Meta:
        model = ContactChannel
        fields = [
            "subscriber",
            "kind",
            "address",
            "language",
            "wants_bills",
            "wants_reminders",
            "wants_service",
            "wants_offers",
        ]

    def clean(self) -> dict:
        data = super().clean()
        if not self.instance.pk and data.get("kind") and data.get("address"):
            try:
                data["address"] = services.channel_address_clean(kind=data["kind"], raw=data["address"])
            except services.InvalidAddress as exc:
                self.add_error("address", exc.message)
        if self.instance.pk and data.get("code"):
            try:
                services.channel_verify(channel=self.instance, code=data["code"], verified_by=self.request_user)
            except services.CodeRejected as exc:
                self.add_error("code", exc.message)
        return data


@admin.register(ContactChannel)
class ContactChannelAdmin(PhoneAwareSearchMixin, admin.ModelAdmin):
    form = ChannelAdminForm
    phone_lookup = "address"
    list_display = ["address", "kind", "subscriber", "language", "verified_at", "registered_by", "created_at"]
    list_filter = ["kind", "language", ("verified_at", admin.EmptyFieldListFilter), "subscriber__agency"]
    list_select_related = ["subscriber", "registered_by"]
    search_fields = ["address", "subscriber__full_name", "subscriber__user__phone", "subscriber__accounts__number"]
    raw_id_fields = ["subscriber"]
    readonly_fields = ["verified_at", "registered_by", "created_at"]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):  # type: ignore[override]
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user = request.user  # type: ignore[attr-defined]
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: ContactChannel | None = None) -> list[str]:
        # Once registered, the address is what was verified: a new address is a new channel.
        return [*self.readonly_fields, "subscriber", "kind", "address"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ContactChannel, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        channel = services.channel_add(
            subscriber=obj.subscriber, kind=obj.kind, address=obj.address, language=obj.language,
            registered_by=request.user,
        )  # fmt: skip
        obj.pk = channel.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            _("A code was sent to %(address)s; type it here when the subscriber reads it out.")
            % {"address": channel.address},
        )


@admin.register(ChannelVerification)
class ChannelVerificationAdmin(admin.ModelAdmin):
    """Who asked for codes, when, and how they ended; the codes themselves are never shown."""

    list_display = ["address", "channel", "status", "attempts", "created_at", "expires_at", "requested_by"]
    list_filter = ["status"]
    search_fields = ["address"]
    list_select_related = ["channel", "requested_by"]
    exclude = ["code_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
