from __future__ import annotations

from celery import shared_task
from django.db import transaction

from core.audit import audit_system

from . import appointments, dunning, plan_changes, services
from .messages import bills_announce
from .models import Bill


@shared_task
def bills_flag_overdue() -> int:
    with audit_system("bills_flag_overdue"):
        return services.bills_flag_overdue()


@shared_task
def dunning_run() -> dict[str, int]:
    """The daily overdue ladder (billing.dunning): safe to run twice or late."""
    with audit_system("dunning_run"):
        return dunning.dunning_run().steps


@shared_task
def appointments_remind() -> int:
    """Tomorrow's technician visits: one reminder each (billing.appointments)."""
    return appointments.appointments_remind()


@shared_task(ignore_result=True)
def bills_announce_chunk(bill_ids: list[int]) -> int:
    """Announce a slice of a bill run; the run is spread over the workers this way."""
    with transaction.atomic():
        return bills_announce(bills=services.bills_with_channels(Bill.objects.filter(pk__in=bill_ids)))


@shared_task
def plan_changes_apply_due() -> int:
    """The daily switch of scheduled plan changes (billing.plan_changes)."""
    with audit_system("plan_changes_apply_due"):
        return plan_changes.plan_changes_apply_due()
