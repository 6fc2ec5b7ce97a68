"""Agency scoping of the whole back office, in one mechanism.

Every ModelAdmin subclasses `AgencyScopedAdmin` and declares the lookup from its
model to the agency it belongs to (`agency_path = "account__subscriber__agency"`),
or `agency_path = GLOBAL` for rows of no agency (plans, groups). Everything the
admin shows or touches goes through `get_queryset` (changelist, change, delete
and history pages, actions, autocomplete, raw-id pop-ups), so scoping it there
and in foreign-key choices and relation filters covers every screen; a test walks
every registered ModelAdmin as another agency's clerk to hold it so.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest

from .selectors import staff_agency_ids

# Rows that belong to no agency: everybody with the view permission sees them all.
GLOBAL = None


def agency_scope(queryset: QuerySet, *, paths: str | tuple[str, ...], agency_ids: frozenset[int] | None) -> QuerySet:
    """The rows of `queryset` whose agency (reached through any of `paths`) is in
    `agency_ids`; all of them when `agency_ids` is None (every agency)."""
    if agency_ids is None:
        return queryset
    if isinstance(paths, str):
        return queryset.filter(**{f"{paths}__in": agency_ids})
    # Several paths (or a many-to-many one) would repeat rows as a join: a subquery does not.
    matching = Q()
    for path in paths:
        matching |= Q(**{f"{path}__in": agency_ids})
    return queryset.filter(pk__in=queryset.model._default_manager.filter(matching).values("pk"))


class AgencyScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin that shows a member of staff only their agencies' rows.

    Subclasses must declare `agency_path` (no default: forgetting it fails
    loudly rather than showing every agency).
    """

    agency_path: str | tuple[str, ...] | None

    def agency_scope(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.agency_path is GLOBAL:
            return queryset
        return agency_scope(queryset, paths=self.agency_path, agency_ids=staff_agency_ids(request.user))  # type: ignore[arg-type]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.agency_scope(request, super().get_queryset(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Model:
        # Another agency's row answers like a missing one: 404, not the admin's
        # redirect with "perhaps it was deleted", and nothing of it is shown.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):  # type: ignore[no-untyped-def]
        return self._scoped_choices(db_field, request, super().formfield_for_foreignkey(db_field, request, **kwargs))

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):  # type: ignore[no-untyped-def]
        return self._scoped_choices(db_field, request, super().formfield_for_manytomany(db_field, request, **kwargs))

    def _scoped_choices(self, db_field, request: HttpRequest, formfield):  # type: ignore[no-untyped-def]
        # A select, a raw-id box or an autocomplete all validate against this
        # queryset: scoped the way the related model's own admin is.
        related_admin = self.admin_site._registry.get(db_field.remote_field.model)
        if formfield is not None and isinstance(related_admin, AgencyScopedAdmin):
            formfield.queryset = related_admin.agency_scope(request, formfield.queryset)
        return formfield

    def get_list_filter(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        # A relation filter lists every row of the related table (every agency);
        # for scoped staff it lists only the values their own rows hold.
        list_filter = super().get_list_filter(request)
        if staff_agency_ids(request.user) is None:
            return list_filter
        return [self._related_only(entry) for entry in list_filter]

    def _related_only(self, entry):  # type: ignore[no-untyped-def]
        if not isinstance(entry, str):
            return entry
        try:
            field = get_fields_from_path(self.model, entry)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return entry
        return (entry, admin.RelatedOnlyFieldListFilter) if field.is_relation else entry
