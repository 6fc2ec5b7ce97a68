from __future__ import annotations

from celery import shared_task
from django.db import OperationalError, transaction

from core.audit import audit_system

from . import appointments, dunning, plan_changes, runs, services
from .messages import bills_announce
from .models import Bill, BillRun


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
    """Announce a slice of bills; a large announcement is spread over the workers this way."""
    with transaction.atomic():
        return bills_announce(bills=services.bills_with_channels(Bill.objects.filter(pk__in=bill_ids)))


@shared_task
def plan_changes_apply_due() -> int:
    """The daily switch of scheduled plan changes (billing.plan_changes)."""
    with audit_system("plan_changes_apply_due"):
        return plan_changes.plan_changes_apply_due()


# A lost connection or a deadlock victim: the chunk rolled back whole, try again.
@shared_task(
    ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=5, retry_backoff_max=120, max_retries=5
)
def bill_run_chunk(chunk_id: int) -> str:
    with audit_system("bill_run"):
        return runs.bill_run_chunk_process(chunk_id=chunk_id)


def bill_run_enqueue(*, run: BillRun) -> int:
    """Hand the run's pending chunks to the workers once the caller's transaction
    commits (in-process when there is no broker); returns how many."""
    ids = runs.bill_run_pending_chunks(run=run)

    def send() -> None:
        for chunk_id in ids:
            bill_run_chunk.delay(chunk_id)

    transaction.on_commit(send)
    return len(ids)


@shared_task(ignore_result=True)
def bill_runs_redrive() -> int:
    """Hand out again the pending chunks of runs that stopped moving; returns how many."""
    return sum(bill_run_enqueue(run=run) for run in runs.bill_runs_stalled())
