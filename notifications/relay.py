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
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ChannelKind, ContactChannel

from .channels.base import PermanentError, SendResult, TransientError
from .channels.registry import transport_for
from .events import SECRET_MASK, event_get
from .models import Message
from .reports import delivery_reports_apply_waiting

logger = logging.getLogger(__name__)


# The flag of a pending relay kick, in the shared cache (Redis when REDIS_URL is set).
RELAY_KICK_KEY = "notifications:relay-kick"


def relay_kick_wanted() -> bool:
    """True if no relay kick is pending, and then this caller is the one to send
    it: publishing a Celery task after every commit that writes a message cost
    a payment 7 % of its CPU, for a relay that one kick wakes up as well.

    Nothing is left unsent: the relay clears the flag *before* it claims
    (`relay_kick_done`), so a row committed before the clearing is claimed by
    that run, and a row committed after it finds no flag and kicks again. A kick
    the broker lost holds the flag SELFCARE_OUTBOX_KICK_SECONDS at most; the
    beat's relay runs anyway. If the cache is down, every commit kicks, as before.
    """
    try:
        return bool(cache.add(RELAY_KICK_KEY, 1, timeout=settings.SELFCARE_OUTBOX_KICK_SECONDS))
    except Exception:
        logger.warning("Could not set the relay kick flag; kicking anyway.", exc_info=True)
        return True


def relay_kick_done() -> None:
    """The relay is starting (or a kick failed to publish): the next commit kicks again."""
    try:
        cache.delete(RELAY_KICK_KEY)
    except Exception:
        logger.warning("Could not clear the relay kick flag; it expires by itself.", exc_info=True)


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


@dataclass
class _Outcome:
    message: Message
    result: SendResult | None = None
    error: Exception | None = None


def messages_send(ids: Sequence[int]) -> dict[str, int]:
    """Send a claimed batch; safe to run twice for the same ids.

    Provider calls run on a few threads (they wait on the network, not the
    CPU); the outcomes are then written with one compare-and-set UPDATE per
    kind of outcome, only for rows still SENDING under this claim.
    """
    batch = list(Message.objects.filter(pk__in=ids, status=Message.Status.SENDING).order_by("pk"))
    if not batch:
        return {"sent": 0, "retry": 0, "failed": 0, "skipped": len(ids), "cancelled": 0}
    batch, cancelled = _deliverable(batch)
    if not batch:
        return {"sent": 0, "retry": 0, "failed": 0, "skipped": 0, "cancelled": cancelled}
    batch, outcomes, deferred = _attach(batch)
    if batch:
        with ThreadPoolExecutor(max_workers=min(settings.SELFCARE_OUTBOX_SEND_THREADS, len(batch))) as pool:
            outcomes += pool.map(_send_one, batch)
    counts = _record(outcomes)
    # Returned to the queue unsent: counted with the rows this worker did not send.
    counts["skipped"] += _release(deferred)
    return {**counts, "cancelled": cancelled}


def _attach(batch: list[Message]) -> tuple[list[Message], list[_Outcome], list[Message]]:
    """Give the e-mails whose event carries files (EventType.email_attachments)
    those files, in memory. Returns the rows ready to send, an outcome (retry
    later) for each whose files could not be made, and the rows left for the
    next relay run.

    Here, in the relay's own thread, because the files come from the database
    (a bill's PDF) and the sending threads below only talk to providers. Making
    files takes time (a PDF, a few hundred ms): past half the stale window the
    rest of the batch goes back to the queue, so the re-drive never takes a row
    this worker is still busy with, and nothing is sent twice.
    """
    budget = settings.SELFCARE_OUTBOX_STALE_SECONDS / 2
    started = time.monotonic()
    ready, failed, deferred = [], [], []
    made = 0
    for m in batch:
        event = event_get(m.event)
        if m.channel_kind != ChannelKind.EMAIL or event is None or event.email_attachments is None:
            ready.append(m)
            continue
        if made and time.monotonic() - started > budget:  # at least one per batch, so the queue moves
            deferred.append(m)
            continue
        made += 1
        try:
            m.attachments = tuple(event.email_attachments(m))
        except Exception as exc:
            logger.exception("Could not make the attachments of message %s", m.pk)
            failed.append(_Outcome(m, error=TransientError(f"attachment: {exc!r}")))
            continue
        ready.append(m)
    return ready, failed, deferred


def _release(rows: list[Message]) -> int:
    """Put claimed rows back in the queue as they were (no attempt counted), if
    still under this worker's claim."""
    released = 0
    for claimed_at in {m.claimed_at for m in rows}:
        released += Message.objects.filter(
            pk__in=[m.pk for m in rows if m.claimed_at == claimed_at],
            status=Message.Status.SENDING,
            claimed_at=claimed_at,
        ).update(status=Message.Status.PENDING, claimed_at=None, next_attempt_at=timezone.now())
    return released


def _deliverable(batch: list[Message]) -> tuple[list[Message], int]:
    """The rows that may still go out, secrets filled in (in memory only); the
    others are cancelled with their reason.

    Checked again here, just before sending, because a channel may have been
    removed or unverified (a queryset update, an import…) since the row was
    written: it receives nothing more, except the code that verifies it.
    """
    channel_ids = {m.channel_id for m in batch if m.channel_id}
    verified = dict(ContactChannel.objects.filter(pk__in=channel_ids).values_list("pk", "verified_at"))
    reasons: dict[int, str] = {}
    for m in batch:
        event = event_get(m.event)
        if m.channel_id not in verified:
            reasons[m.pk] = "The channel was removed."
        elif verified[m.channel_id] is None and (event is None or event.verified_only):
            reasons[m.pk] = "The channel is no longer verified."
    by_event: dict[str, list[Message]] = defaultdict(list)
    for m in batch:
        if m.pk not in reasons:
            by_event[m.event].append(m)
    for name, rows in by_event.items():
        event = event_get(name)
        if event is None or not event.sealed_param or event.sealed_fill is None:
            continue
        values = event.sealed_fill(rows)
        for m in rows:
            value = values.get(m.pk)
            if value is None:
                reasons[m.pk] = "The code is no longer valid (used, replaced or expired)."
                continue
            m.body = m.body.replace(SECRET_MASK, value)
            m.subject = m.subject.replace(SECRET_MASK, value)
            m.template_params = [str(p).replace(SECRET_MASK, value) for p in m.template_params]
    cancelled = 0
    by_reason: dict[tuple[str, dt.datetime | None], list[int]] = defaultdict(list)
    for m in batch:
        if m.pk in reasons:
            by_reason[(reasons[m.pk], m.claimed_at)].append(m.pk)
    for (reason, claimed_at), pks in by_reason.items():
        cancelled += Message.objects.filter(pk__in=pks, status=Message.Status.SENDING, claimed_at=claimed_at).update(
            status=Message.Status.CANCELLED, claimed_at=None, last_error=reason
        )
    return [m for m in batch if m.pk not in reasons], cancelled


def _send_one(message: Message) -> _Outcome:
    try:
        return _Outcome(message, result=transport_for(message.channel_kind).send(message))
    except (TransientError, PermanentError) as exc:
        return _Outcome(message, error=exc)
    except Exception as exc:
        logger.exception("Provider crashed on message %s", message.pk)
        return _Outcome(message, error=TransientError(f"provider crashed: {exc!r}"))


def _record(outcomes: list[_Outcome]) -> dict[str, int]:
    """Write a batch's outcomes with a few UPDATEs, each a compare-and-set on
    SENDING: a row that a re-drive handed to another worker meanwhile is left alone.

    Rows are grouped by what they share (status, provider, error, attempts),
    so a batch of 250 successes is two statements, not 250 (measured: Django's
    per-row CASE in bulk_update cost more than the HTTP calls).
    """
    now = timezone.now()
    counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    groups: dict[tuple, list[Message]] = defaultdict(list)
    for o in outcomes:
        m, attempts = o.message, o.message.attempts + 1
        if o.result is not None:
            provider = transport_for(m.channel_kind).name
            groups[("sent", m.claimed_at, o.result.status, provider, attempts)].append(m)
            m.provider, m.provider_message_id = provider, o.result.provider_message_id
        elif isinstance(o.error, TransientError) and attempts < settings.SELFCARE_OUTBOX_MAX_ATTEMPTS:
            groups[("retry", m.claimed_at, str(o.error)[:2000], attempts)].append(m)
        else:
            groups[("failed", m.claimed_at, str(o.error)[:2000], attempts)].append(m)

    with transaction.atomic():
        for key, rows in groups.items():
            # Still SENDING under *this* claim: a row re-driven and claimed again by
            # another worker has a new claimed_at and is left to that worker.
            claimed_at = key[1]
            still_claimed = Message.objects.filter(
                pk__in=[m.pk for m in rows], status=Message.Status.SENDING, claimed_at=claimed_at
            )
            if key[0] == "sent":
                _, _, status, provider, attempts = key
                # Ids first, under the same guard; the rows stay locked until commit.
                _set_provider_ids([m for m in rows if m.provider_message_id], claimed_at=claimed_at)
                updated = still_claimed.update(
                    status=status, attempts=attempts, claimed_at=None, provider=provider, sent_at=now, last_error=""
                )
            elif key[0] == "retry":
                _, _, error, attempts = key
                updated = still_claimed.update(
                    status=Message.Status.PENDING, attempts=attempts, claimed_at=None,
                    next_attempt_at=now + backoff(attempts), last_error=error,
                )  # fmt: skip
            else:
                _, _, error, attempts = key
                updated = still_claimed.update(
                    status=Message.Status.FAILED, attempts=attempts, claimed_at=None, last_error=error
                )
            counts[key[0]] += updated
        counts["skipped"] = len(outcomes) - counts["sent"] - counts["retry"] - counts["failed"]
        sent = [m for key, rows in groups.items() if key[0] == "sent" for m in rows if m.provider_message_id]
        if sent:
            # A delivery report may have beaten our own bookkeeping: apply it now.
            by_provider: dict[str, list[str]] = defaultdict(list)
            for m in sent:
                by_provider[m.provider].append(m.provider_message_id)
            for provider, message_ids in by_provider.items():
                delivery_reports_apply_waiting(provider=provider, provider_message_ids=message_ids)
    return counts


def _set_provider_ids(rows: list[Message], *, claimed_at: dt.datetime | None) -> None:
    """Each row's own provider message id, in one statement."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE notifications_message AS m SET provider_message_id = v.pid "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, pid) "
                "WHERE m.id = v.id AND m.status = %s AND m.claimed_at = %s",
                [[m.pk for m in rows], [m.provider_message_id for m in rows], Message.Status.SENDING, claimed_at],
            )
    else:  # SQLite, the demo: volumes are small
        Message.objects.filter(status=Message.Status.SENDING, claimed_at=claimed_at).bulk_update(
            rows, ["provider_message_id"]
        )
