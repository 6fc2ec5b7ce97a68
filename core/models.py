from __future__ import annotations

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
