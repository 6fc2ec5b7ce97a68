from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import ChannelKind, ContactChannel, Language, Subscriber

from . import events


class Message(models.Model):
    """One message to one channel: the outbox row, written in the same
    transaction as the event that causes it, then walked up its status ladder
    by the relay and the provider's delivery reports."""

    # Not followed by the audit trail (the relay writes it in bulk, and its status
    # ladder is its own record); an admin action on it is, with this scope.
    audit_scope = {"agency_id": "subscriber__agency_id", "subscriber_id": "subscriber_id"}

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        # Not sent, and never will be: its channel was removed or is no longer
        # verified, or its code is void (`last_error` says which).
        CANCELLED = "cancelled", _("Cancelled")

    # (event, object, channel): the same bill is never announced twice on one channel.
    # Unique by a constraint: unique=True would add a LIKE index nothing uses,
    # which every write of the outbox (a bill run's million) would maintain.
    dedupe_key = models.CharField(_("dedupe key"), max_length=120)
    # An EventType's name (notifications/events.py), declared by the app that owns the event.
    event = models.CharField(_("event"), max_length=32)
    # Indexed by message_subscriber_idx, which starts with it.
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="messages", verbose_name=_("subscriber"), db_index=False
    )
    # What the message is about as the subscriber knows it (an account number), for searching.
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    channel = models.ForeignKey(
        ContactChannel, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages",
        verbose_name=_("channel"),
    )  # fmt: skip
    # What was addressed, kept even if the channel is removed later.
    channel_kind = models.CharField(_("channel"), max_length=8, choices=ChannelKind.choices)
    address = models.CharField(_("address"), max_length=254)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    # SMS only: GSM-7 or UCS-2, and how many segments the operator will bill.
    encoding = models.CharField(_("encoding"), max_length=5, blank=True)
    segments = models.PositiveSmallIntegerField(_("segments"), default=0)
    # Verification codes and disconnection warnings ignore quiet hours.
    urgent = models.BooleanField(_("urgent"), default=False)
    # WhatsApp template and its parameters, when sent through the Cloud API.
    template_name = models.CharField(max_length=64, blank=True)
    template_params = models.JSONField(default=list, blank=True)

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=24, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=128, null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("outbox")
        ordering = ["-created_at"]
        # Reading the outbox is not sending again.
        permissions = [("resend_message", _("Can re-send failed messages"))]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="message_dedupe_key_unique"),
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_provider_id_unique",
            ),
        ]
        indexes = [
            # The relay's claim: pending rows by due time, and nothing else.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="message_pending_due_idx"),
            # The relay's sweep of claims that never finished, and the back office's
            # failed messages, newest first. Partial: the pending rows a bill run writes
            # by the million have no entry in either.
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="message_sending_claimed_idx"),
            models.Index(fields=["-created_at"], condition=Q(status="failed"), name="message_failed_idx"),
            models.Index(fields=["subscriber", "-created_at"], name="message_subscriber_idx"),
            # Exact searches by account number (no LIKE index: nothing searches by prefix).
            models.Index(fields=["reference"], name="message_reference_idx"),
        ]

    # Not a column: the files an e-mail carries, filled in memory by the relay just
    # before sending (EventType.email_attachments) and read by the e-mail channel.
    attachments: tuple[events.Attachment, ...] = ()

    def __str__(self) -> str:
        return f"{self.event} → {self.address} ({self.status})"

    @property
    def event_label(self) -> str:
        return events.event_label(self.event)


class DeliveryReport(models.Model):
    """A provider's delivery report, kept as received (the webhook inbox).

    Kept even when no message matches yet: a gateway can report before the
    worker has stored the message id, and the report is applied then.
    """

    provider = models.CharField(_("provider"), max_length=24)
    provider_message_id = models.CharField(_("provider message id"), max_length=128)
    raw_status = models.CharField(_("provider status"), max_length=32)
    status = models.CharField(_("status"), max_length=10, choices=Message.Status.choices)
    payload = models.JSONField(_("payload"), default=dict)
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="reports")
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery report")
        verbose_name_plural = _("delivery reports")
        ordering = ["-received_at"]
        constraints = [
            # A provider retrying the same report is stored once.
            models.UniqueConstraint(
                fields=["provider", "provider_message_id", "raw_status"], name="deliveryreport_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["provider", "provider_message_id"],
                condition=Q(applied_at__isnull=True),
                name="deliveryreport_waiting_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_message_id} {self.raw_status}"
