from __future__ import annotations

from celery import shared_task

from . import services


@shared_task
def bills_flag_overdue() -> int:
    return services.bills_flag_overdue()


@shared_task
def bills_remind() -> int:
    return services.bills_remind()
