from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction


class Sequence(models.Model):
    """A named gap-free counter (account serials), advanced under a row lock."""

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
