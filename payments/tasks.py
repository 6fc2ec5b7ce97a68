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


@shared_task
def orders_poll() -> dict[str, int]:
    """Ask the providers about checkouts whose callback has not come, and about
    those that ended unpaid lately: a wallet payment that arrives late is applied."""
    with audit_system("orders_poll"):
        return orders.orders_poll()
