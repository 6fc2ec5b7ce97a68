"""Celery tasks: thin wrappers that take ids and call the relay."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import relay


@shared_task(ignore_result=True)
def outbox_relay() -> int:
    """Claim due messages in batches and hand each batch to a worker."""
    # First: a message committed from now on kicks again (relay.relay_kick_wanted).
    relay.relay_kick_done()
    total = 0
    while ids := relay.outbox_claim(limit=settings.SELFCARE_OUTBOX_BATCH):
        messages_send.delay(ids)
        total += len(ids)
        if len(ids) < settings.SELFCARE_OUTBOX_BATCH:
            break
    return total


@shared_task(ignore_result=True)
def messages_send(ids: list[int]) -> dict[str, int]:
    return relay.messages_send(ids)


@shared_task(ignore_result=True)
def outbox_redrive() -> int:
    count = relay.outbox_redrive()
    if count:
        outbox_relay.delay()
    return count
