"""Rendered parts of the subscriber pages, cached per subscriber.

A subscriber's pages change only when their bills, accounts or consumption do,
and rendering them (ORM query building, templates) is most of a page's CPU.
Each fragment is keyed on the subscriber's *data version*, a cache entry that
every write bumps once its transaction commits:

- single-row saves and deletes (services, admin) through the signals below;
- bulk updates, which send no signal, by calling `subscribers_touch` (the
  overdue sweep does);
- plan edits bump one version shared by everybody, since plans show on all pages.

A missing version (Redis restarted or evicted it) is replaced by a new one, so
losing a key costs a miss, never a stale page. Fragments also expire after
FRAGMENT_TTL, which bounds any write path that forgets to bump.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import translation

from .models import Bill, Consumption, Plan, PlanTier, ServiceAccount

cache = caches["fragments"]  # Redis when configured; a dummy (no caching) otherwise
FRAGMENT_TTL = 600
T = TypeVar("T")
_PLANS = "fragments:plans"


def _version_key(subscriber_id: int) -> str:
    return f"fragments:subscriber:{subscriber_id}"


def _fresh() -> str:
    return str(time.time_ns())


def fragment(*, subscriber_id: int, name: str, vary: Iterable[object], build: Callable[[], T]) -> T:
    """The cached value (usually HTML) of fragment `name`, or `build()` it and cache it."""
    keys = [_version_key(subscriber_id), _PLANS]
    versions = cache.get_many(keys)
    missing = {k: _fresh() for k in keys if k not in versions}
    if missing:
        cache.set_many(missing, timeout=None)
        versions.update(missing)
    key = ":".join(
        [
            "fragments",
            name,
            str(subscriber_id),
            *(versions[k] for k in keys),
            translation.get_language() or "",
            *map(str, vary),
        ]
    )
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout=FRAGMENT_TTL)
    return value


def subscribers_touch(subscriber_ids: Iterable[int]) -> None:
    """Invalidate these subscribers' fragments once the current transaction commits."""
    keys = [_version_key(i) for i in set(subscriber_ids)]
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys))


@receiver([post_save, post_delete], sender=Bill)
@receiver([post_save, post_delete], sender=Consumption)
def _account_row_changed(sender, instance: Bill | Consumption, **kwargs) -> None:
    subscriber_id = (
        ServiceAccount.objects.filter(pk=instance.account_id).values_list("subscriber_id", flat=True).first()
    )
    if subscriber_id is not None:
        subscribers_touch([subscriber_id])


@receiver(pre_save, sender=ServiceAccount)
def _account_about_to_change(sender, instance: ServiceAccount, **kwargs) -> None:
    # An account moved to another subscriber must leave the old owner's pages too.
    if instance.pk:
        previous = ServiceAccount.objects.filter(pk=instance.pk).values_list("subscriber_id", flat=True).first()
        if previous is not None and previous != instance.subscriber_id:
            subscribers_touch([previous])


@receiver([post_save, post_delete], sender=ServiceAccount)
def _account_changed(sender, instance: ServiceAccount, **kwargs) -> None:
    subscribers_touch([instance.subscriber_id])


@receiver([post_save, post_delete], sender=Plan)
@receiver([post_save, post_delete], sender=PlanTier)
def _plan_changed(sender, instance: Plan | PlanTier, **kwargs) -> None:
    transaction.on_commit(lambda: cache.delete(_PLANS))
