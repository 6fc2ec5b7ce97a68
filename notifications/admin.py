"""Back office for the outbox: follow messages, re-send failed ones.

Messages and reports are read-only: a correction is a new message or a
re-send through the service, never an edit of what was sent.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import PhoneAwareSearchMixin
from accounts.models import ChannelVerification, ContactChannel
from accounts.scoping import AgencyScopedAdmin
from accounts.services import InvalidAddress, channel_address_clean
from core.audit import audited_action

from . import events, verification
from .models import DeliveryReport, Message
from .services import message_resend


class ReadOnlyAdmin(AgencyScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class EventFilter(admin.SimpleListFilter):
    """The outbox's events by their names in the clerk's language, not identifiers."""

    title = _("event")
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return sorted(((e.name, str(e.label)) for e in events.event_types()), key=lambda pair: pair[1])

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    agency_path = "subscriber__agency"
    list_display = [
        "created_at",
        "event_name",
        "channel_kind",
        "address",
        "subscriber",
        "status",
        "attempts",
        "segments",
    ]
    list_filter = ["status", "channel_kind", EventFilter, "subscriber__agency", "language"]
    list_select_related = ["subscriber"]
    search_fields = ["address", "dedupe_key", "provider_message_id", "subscriber__full_name", "reference"]
    date_hierarchy = "created_at"
    actions = ["resend"]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.resend_message")

    @admin.action(description=_("Re-send the selected failed messages"), permissions=["resend"])
    @audited_action
    def resend(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        count = sum(message_resend(message=m) for m in queryset.filter(status=Message.Status.FAILED))
        self.message_user(
            request,
            ngettext("%(count)d message queued again.", "%(count)d messages queued again.", count) % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    @admin.display(description=_("event"), ordering="event")
    def event_name(self, obj: Message) -> str:
        return obj.event_label

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return ["event_name", *(f.name for f in self.model._meta.fields)]


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnlyAdmin):
    # A report that matched no message belongs to no agency: only head office sees it.
    agency_path = "message__subscriber__agency"
    list_display = ["received_at", "provider", "provider_message_id", "raw_status", "status", "message", "applied_at"]
    list_filter = ["provider", "status"]
    search_fields = ["provider_message_id"]
    list_select_related = ["message"]


# --- Contact channels: registered at the counter, proven by a code ----------


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
                data["address"] = channel_address_clean(kind=data["kind"], raw=data["address"])
            except InvalidAddress as exc:
                self.add_error("address", exc.message)
        if self.instance.pk and data.get("code"):
            try:
                verification.channel_verify(channel=self.instance, code=data["code"], verified_by=self.request_user)
            except verification.CodeRejected as exc:
                self.add_error("code", exc.message)
        return data


@admin.register(ContactChannel)
class ContactChannelAdmin(PhoneAwareSearchMixin, AgencyScopedAdmin):
    agency_path = "subscriber__agency"
    form = ChannelAdminForm
    phone_lookup = "address"
    list_display = ["address", "kind", "subscriber", "language", "verified_at", "registered_by", "created_at"]
    list_filter = ["kind", "language", ("verified_at", admin.EmptyFieldListFilter), "subscriber__agency"]
    list_select_related = ["subscriber", "registered_by"]
    search_fields = ["address", "subscriber__full_name", "subscriber__user__phone", "subscriber__accounts__number"]
    autocomplete_fields = ["subscriber"]
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
        channel = verification.channel_add(
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
class ChannelVerificationAdmin(AgencyScopedAdmin):
    """Who asked for codes, when, and how they ended; the codes themselves are never shown."""

    agency_path = "channel__subscriber__agency"

    # The purpose tells a clerk whether someone asked to reset the subscriber's password by SMS.
    list_display = ["address", "channel", "purpose", "status", "attempts", "created_at", "expires_at", "requested_by"]
    list_filter = ["purpose", "status"]
    search_fields = ["address"]
    list_select_related = ["channel", "requested_by"]
    exclude = ["code_hash", "salt"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
