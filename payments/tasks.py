from __future__ import annotations

from celery import shared_task

from core.audit import audit_system

from . import orders


@shared_task
def orders_expire() -> int:
    """Orders whose time is up: a late "paid" from the provider still completes them,
    the rest become expired with nothing applied."""
    with audit_system("orders_expire"):
        return orders.orders_expire()
