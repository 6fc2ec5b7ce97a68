from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Sequence


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    """Visible for support; never edited by hand (a rewound counter reissues numbers)."""

    list_display = ["name", "last_value"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Sequence | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Sequence | None = None) -> bool:
        return False
