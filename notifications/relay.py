"""The outbox relay: claim pending rows, send them, record what happened.

Guarantee: at least once. A row is claimed by one relay (SELECT … FOR UPDATE
SKIP LOCKED, then status SENDING), sent by one worker, and marked SENT by a
compare-and-set from SENDING. Only a worker that dies between the provider's
answer and that update leaves a row in SENDING; `outbox_redrive` returns it to
PENDING after SELFCARE_OUTBOX_STALE_SECONDS and it is sent again. So a repeat
is possible only for the messages in flight at a crash, and each send carries
its dedupe key as client reference so a gateway that honours one drops it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .channels.base import PermanentError, TransientError
from .channels.registry import transport_for
from .models import Message

logger = logging.getLogger(__name__)


def outbox_claim(*, limit: int, now: dt.datetime | None = None) -> list[int]:
    """Move up to `limit` due PENDING rows to SENDING; concurrent relays never share one."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Message.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Message.objects.filter(pk__in=ids).update(status=Message.Status.SENDING, claimed_at=now)
    return ids


def outbox_redrive(*, now: dt.datetime | None = None) -> int:
    """Return rows stuck in SENDING (their worker died, or the broker lost the task)."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.SELFCARE_OUTBOX_STALE_SECONDS)
    return Message.objects.filter(status=Message.Status.SENDING, claimed_at__lt=stale).update(
        status=Message.Status.PENDING, next_attempt_at=now, claimed_at=None
    )


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, 4 min…, at most an hour."""
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def messages_send(ids: Sequence[int]) -> dict[str, int]:
    """Send each claimed message once; safe to run twice for the same ids."""
    counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    for message in Message.objects.filter(pk__in=ids, status=Message.Status.SENDING).order_by("pk"):
        counts[message_send(message)] += 1
    return counts


def message_send(message: Message) -> str:
    transport = transport_for(message.channel_kind)
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at)
    try:
        result = transport.send(message)
    except TransientError as exc:
        attempts = message.attempts + 1
        if attempts >= settings.SELFCARE_OUTBOX_MAX_ATTEMPTS:
            claimed.update(status=Message.Status.FAILED, attempts=attempts, last_error=str(exc)[:2000], claimed_at=None)
            return "failed"
        claimed.update(
            status=Message.Status.PENDING,
            attempts=attempts,
            next_attempt_at=timezone.now() + backoff(attempts),
            last_error=str(exc)[:2000],
            claimed_at=None,
        )
        return "retry"
    except PermanentError as exc:
        claimed.update(
            status=Message.Status.FAILED, attempts=F("attempts") + 1, last_error=str(exc)[:2000], claimed_at=None
        )
        return "failed"
    now = timezone.now()
    updated = claimed.update(
        status=result.status,
        attempts=F("attempts") + 1,
        provider=transport.name,
        provider_message_id=result.provider_message_id,
        sent_at=now,
        claimed_at=None,
        last_error="",
    )
    if updated and result.provider_message_id:
        # A delivery report may have beaten our own bookkeeping: apply it now.
        from .services import delivery_reports_apply_waiting

        delivery_reports_apply_waiting(provider=transport.name, provider_message_id=result.provider_message_id)
    return "sent" if updated else "skipped"
