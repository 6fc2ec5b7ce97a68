from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models, transaction


class Sequence(models.Model):
    """A named gap-free counter (account serials), advanced under a row lock.

    The lock is held until the caller's transaction ends, so concurrent callers
    take turns: right for a rare write (opening an account), a queue for a
    frequent one (see `sequence_nextval`)."""

    name = models.CharField(max_length=64, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


def sequence_next(name: str, *, count: int = 1) -> range:
    """Reserve `count` consecutive values; concurrent callers never share one."""
    with transaction.atomic():
        Sequence.objects.get_or_create(name=name)
        seq = Sequence.objects.select_for_update().get(name=name)
        start = seq.last_value + 1
        seq.last_value += count
        seq.save(update_fields=["last_value"])
    return range(start, start + count)


def sequence_nextval(name: str) -> int:
    """The next value of the PostgreSQL SEQUENCE `name` (created by a migration of
    the app that owns it): unique and increasing, without a row lock, so that
    concurrent transactions never wait for each other for it. The price is gaps:
    a value drawn by a transaction that rolls back is never used.

    Elsewhere (SQLite, `make run`: one writer at a time anyway) it is the
    `Sequence` row of the same name, gap-free."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [name])
            return cursor.fetchone()[0]
    (value,) = sequence_next(name)
    return value


M = TypeVar("M", bound=models.Model)


def get_or_none(queryset: models.QuerySet[M]) -> M | None:
    """The one row a lookup by a unique key finds, or None. Unlike `.first()` it
    adds no ORDER BY (the model's ordering, or the key), which a hot path would
    compile on every call for a result of one row."""
    try:
        return queryset.get()
    except queryset.model.DoesNotExist:
        return None


class AuditScoped:
    """Mixin for an audited model: `audit_scope` names the paths from a row to
    its agency and its subscriber (`{"agency_id": "account__subscriber__agency_id"}`),
    which auditlog stores with each entry through `get_additional_data`."""

    audit_scope: ClassVar[Mapping[str, str]] = {}

    def get_additional_data(self) -> dict[str, Any] | None:
        return {key: _walk(self, path) for key, path in self.audit_scope.items()} or None


def _walk(obj: Any, path: str) -> Any:
    for name in path.split("__"):
        try:
            obj = getattr(obj, name)
        except (ObjectDoesNotExist, AttributeError):
            return None  # a staff user has no subscriber; a half-built row has no account
        if obj is None:
            return None
    return obj
