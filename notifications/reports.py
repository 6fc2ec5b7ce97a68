"""Delivery reports: the providers' word on each message, kept as received and
applied up the status ladder."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError

from .models import DeliveryReport, Message


class ReportInboxFull(ApplicationError):
    """Too many reports wait for a message we do not know: this one is not kept.

    Only a holder of the callback token or the app secret can post reports,
    but a leaked one must not fill the database; the provider retries later."""

    code = "report_inbox_full"


# A report may only move a message up this ladder: a late "delivered" never
# downgrades "read", and "failed" cannot undo a delivery.
REPORT_FROM = {
    Message.Status.SENT: (Message.Status.SENDING,),
    Message.Status.DELIVERED: (Message.Status.SENDING, Message.Status.SENT),
    Message.Status.READ: (Message.Status.SENDING, Message.Status.SENT, Message.Status.DELIVERED),
    Message.Status.FAILED: (Message.Status.SENDING, Message.Status.SENT),
}
STAMP = {Message.Status.DELIVERED: "delivered_at", Message.Status.READ: "read_at"}


def delivery_report_record(
    *, provider: str, provider_message_id: str, raw_status: str, status: str, payload: dict[str, Any]
) -> Message | None:
    """Store a report and apply it; returns the message, or None while none matches.

    A report with no message yet is kept and applied when the worker records
    the message id (`delivery_reports_apply_waiting`), so none is lost, up to
    SELFCARE_UNMATCHED_REPORTS_MAX waiting in all: past that a new one for an
    unknown message raises ReportInboxFull and nothing is stored.
    """
    with transaction.atomic():
        known = DeliveryReport.objects.filter(
            provider=provider, provider_message_id=provider_message_id, raw_status=raw_status
        ).exists()
        if not known and _inbox_full() and not _message_exists(provider, provider_message_id):
            raise ReportInboxFull("Too many delivery reports wait for an unknown message; this one is not kept.")
        # Stored before the message is looked up: a worker recording the id
        # meanwhile finds the report waiting (delivery_reports_apply_waiting).
        report, _ = DeliveryReport.objects.get_or_create(
            provider=provider,
            provider_message_id=provider_message_id,
            raw_status=raw_status,
            defaults={"status": status, "payload": payload},
        )
        message = Message.objects.filter(provider=provider, provider_message_id=provider_message_id).first()
        if message is None:
            return None
        if report.applied_at is None:
            _apply(report, message)
            message.refresh_from_db()  # _apply writes with UPDATEs: return what is stored
    return message


def _inbox_full() -> bool:
    # Counted on the partial index of waiting reports; the cap is a few thousand rows.
    cap = settings.SELFCARE_UNMATCHED_REPORTS_MAX
    return DeliveryReport.objects.filter(applied_at__isnull=True)[:cap].count() >= cap


def _message_exists(provider: str, provider_message_id: str) -> bool:
    return Message.objects.filter(provider=provider, provider_message_id=provider_message_id).exists()


def delivery_reports_apply_waiting(*, provider: str, provider_message_ids: Iterable[str]) -> int:
    """Apply the reports that arrived before their messages' ids were recorded."""
    ids = list(provider_message_ids)
    with transaction.atomic():
        waiting = list(
            DeliveryReport.objects.select_for_update()
            .filter(provider=provider, provider_message_id__in=ids, applied_at__isnull=True)
            .order_by("received_at")
        )
        if not waiting:
            return 0
        messages = {
            m.provider_message_id: m
            for m in Message.objects.filter(
                provider=provider, provider_message_id__in={r.provider_message_id for r in waiting}
            )
        }
        applied = 0
        for report in waiting:
            if report.provider_message_id in messages:
                _apply(report, messages[report.provider_message_id])
                applied += 1
    return applied


def _apply(report: DeliveryReport, message: Message) -> None:
    now = timezone.now()
    changes: dict[str, Any] = {"status": report.status}
    if report.status in STAMP:
        changes[STAMP[report.status]] = now
    if report.status == Message.Status.FAILED:
        changes["last_error"] = f"{report.provider}: {report.raw_status}"
    Message.objects.filter(pk=message.pk, status__in=REPORT_FROM.get(report.status, ())).update(**changes)
    if report.status == Message.Status.READ:
        # Read implies delivered; keep the delivery time if the report skipped it.
        Message.objects.filter(pk=message.pk, delivered_at__isnull=True).update(delivered_at=now)
    DeliveryReport.objects.filter(pk=report.pk).update(message=message, applied_at=now)
