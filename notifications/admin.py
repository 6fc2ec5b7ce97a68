"""Back office for the outbox: follow messages, re-send failed ones.

Messages and reports are read-only: a correction is a new message or a
re-send through the service, never an edit of what was sent.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import DeliveryReport, Message, SmsAlertSubscription
from .services import message_resend


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "channel_kind", "address", "subscriber", "status", "attempts", "segments"]
    list_filter = ["status", "channel_kind", "event", "subscriber__agency", "language"]
    list_select_related = ["subscriber"]
    search_fields = ["address", "dedupe_key", "provider_message_id", "subscriber__full_name", "account__number"]
    date_hierarchy = "created_at"
    actions = ["resend"]

    @admin.action(description=_("Re-send the selected failed messages"))
    def resend(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        count = sum(message_resend(message=m) for m in queryset.filter(status=Message.Status.FAILED))
        self.message_user(
            request,
            ngettext("%(count)d message queued again.", "%(count)d messages queued again.", count) % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The changelist needs it for the action; the form itself stays read-only.
        return obj is None and request.user.has_perm("notifications.change_message")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "provider_message_id", "raw_status", "status", "message", "applied_at"]
    list_filter = ["provider", "status"]
    search_fields = ["provider_message_id"]
    list_select_related = ["message"]


@admin.register(SmsAlertSubscription)
class SmsAlertSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["account", "started_on", "ended_on"]
    list_filter = ["ended_on"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
