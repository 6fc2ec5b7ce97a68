"""The audit trail's few entry points, on top of django-auditlog.

auditlog records every save and delete of a registered model (backoffice/apps.py
lists them) with the actor and client address of the request. What its signals
cannot see is written here explicitly: bulk writes (`queryset.update`,
`bulk_create`), admin actions, and a customer's data being *read*.

Every entry carries `additional_data = {"agency_id": ..., "subscriber_id": ...}`
(from the model's `audit_scope`), so the trail can be filtered by agency and a
customer's page can list what happened to them and to their objects.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from auditlog.cid import get_cid, set_cid
from auditlog.context import auditlog_value, set_extra_data
from auditlog.diff import get_field_value, get_mask_function, is_primitive, track_field
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import DEFAULT_OBJECT_REPR, LogEntry
from auditlog.registry import auditlog
from auditlog.signals import accessed
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import HttpRequest
from django.utils.encoding import smart_str

from .sql import insert_returning, rows_per_parsed_statement

# Who an entry names when nobody asked for the write (a Celery task, a command).
SYSTEM_ACTOR = "system"

# What a role needs to read the trail is accounts.roles.AUDIT_TRAIL_PERMISSIONS.
# What a role needs to open the Customer 360 page and its search.
CUSTOMER_360_PERMISSIONS: tuple[str, ...] = ("accounts.view_subscriber",)

# --- Who is acting ----------------------------------------------------------


@contextlib.contextmanager
def audit_context(
    *, actor: Any = None, remote_addr: str | None = None, remote_port: int | None = None, source: str | None = None
) -> Iterator[None]:
    """Name the actor (and client address) of the writes inside the block.

    auditlog's own context managers never restore the previous value, so a
    block nested in a request would leave the request anonymous after it, and
    a worker thread would keep the last request's actor; this one restores it.
    """
    data: dict[str, Any] = {"actor": actor, "remote_addr": remote_addr, "remote_port": remote_port}
    if actor is None:
        data["actor_email"] = f"{SYSTEM_ACTOR}:{source}" if source else None
    token = auditlog_value.set(auditlog_value.get(None))
    try:
        with set_extra_data(context_data=data):
            yield
    finally:
        auditlog_value.reset(token)


@contextlib.contextmanager
def audit_as(actor: Any) -> Iterator[None]:
    """Name `actor` for the writes of a service that knows who asked for them
    (a counter payment's clerk). Inside that person's own request nothing
    changes, so the entries keep the request's address; elsewhere (a test, a
    shell) they name `actor` instead of `system`."""
    current = _current() or {}
    named = getattr(current.get("actor"), "pk", None)
    if named is not None and named == getattr(actor, "pk", None):
        yield
        return
    with audit_context(actor=actor, remote_addr=current.get("remote_addr")):
        yield


def audit_system(source: str) -> contextlib.AbstractContextManager[None]:
    """Writes by a task or command that no person asked for: `system:<source>`."""
    return audit_context(source=source)


def _current() -> dict[str, Any] | None:
    return auditlog_value.get(None)


def fill_system_actor(sender: type, instance: LogEntry, **kwargs: Any) -> None:
    """pre_save of LogEntry: an entry written outside any request or block that
    names an actor says `system`, so "nobody known" never reads as blank."""
    if instance.actor_id is None and not instance.actor_email and _current() is None:
        instance.actor_email = SYSTEM_ACTOR


# --- Explicit entries -------------------------------------------------------


def audit_record(
    *,
    instance: models.Model,
    action: int,
    changes: Mapping[str, list[Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> LogEntry:
    """One entry for `instance`, with the actor and address of the current request."""
    additional = _scope_of(instance) | dict(extra or {})
    return LogEntry.objects.log_create(
        instance,
        force_log=True,
        action=action,
        changes=dict(changes or {}),
        changes_text="",
        additional_data=additional or None,
    )


def audit_record_access(*, instance: models.Model) -> None:
    """Personal data was read (the Customer 360 page): auditlog's ACCESS entry,
    through its own signal, as its access-logging views send it."""
    accessed.send(sender=type(instance), instance=instance)


def audit_bulk(
    *,
    model: type[models.Model],
    pks: Iterable[Any],
    action: int = LogEntry.Action.UPDATE,
    changes: Mapping[str, list[Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """One entry per row written by a `queryset.update()` or `bulk_create()`
    (signals never fire for those). Two queries whatever the number of rows."""
    pks = list(pks)
    if not pks:
        return 0
    scope: Mapping[str, str] = getattr(model, "audit_scope", {})
    rows = model._default_manager.filter(pk__in=pks).values("pk", *scope.values())
    ctx = _current() or {}
    actor = ctx.get("actor")
    content_type = ContentType.objects.get_for_model(model)
    entries = []
    for row in rows:
        additional = {key: row[path] for key, path in scope.items()} | dict(extra or {})
        entries.append(
            LogEntry(
                content_type=content_type,
                object_pk=str(row["pk"]),
                object_id=row["pk"] if isinstance(row["pk"], int) else None,
                object_repr=f"{model._meta.verbose_name} #{row['pk']}",
                action=action,
                changes=dict(changes or {}),
                changes_text="",
                actor=actor if getattr(actor, "pk", None) else None,
                actor_email=getattr(actor, "email", None)
                if actor
                else (ctx.get("actor_email") if ctx else SYSTEM_ACTOR),
                remote_addr=ctx.get("remote_addr"),
                remote_port=ctx.get("remote_port"),
                cid=get_cid(),
                additional_data=additional or None,
            )
        )
    LogEntry.objects.bulk_create(entries, batch_size=1000)
    return len(entries)


def audit_saves(
    *,
    created: Iterable[models.Model] = (),
    updated: Iterable[tuple[models.Model, models.Model, Iterable[str]]] = (),
) -> int:
    """The entries auditlog's signals would have written for these saves, in one
    INSERT, for rows a service wrote without a `save()` each (`bulk_create`, one
    UPDATE of several rows it holds locked). A save costs auditlog a SELECT of
    the row as it was and an INSERT of its entry: a payment with its allocations
    and bills would be a dozen statements on the hot path.

    `created`: the new rows, with their primary keys. `updated`: (the row as
    loaded, the same row as written, the fields written); an update that
    changes none of them gets no entry, as with auditlog. The changes are
    auditlog's own diff; the actor, address and correlation id come from the
    current context as its pre_save receivers would put them (no pre_log or
    post_log signal is sent: nothing here listens to them). Returns the count.
    """
    as_json = settings.AUDITLOG_STORE_JSON_CHANGES
    entries = [_entry(instance, LogEntry.Action.CREATE, _diff(None, instance, None, as_json)) for instance in created]
    for old, new, fields in updated:
        changes = _diff(old, new, tuple(fields), as_json)
        if changes:
            entries.append(_entry(new, LogEntry.Action.UPDATE, changes))
    step = rows_per_parsed_statement(LogEntry)
    for start in range(0, len(entries), step):
        insert_returning(LogEntry, entries[start : start + step])
    return len(entries)


def _diff(old: models.Model | None, new: models.Model, fields: tuple[str, ...] | None, as_json: bool) -> dict | None:
    """auditlog's `model_instance_diff(old, new, fields_to_check=fields)`, its own
    field values compared the same way, with the fields to compare worked out once
    per model and field list instead of at every call (a set of every field, then
    filtered by name twice: most of its cost on a payment's four to six entries).
    A creation compares with what auditlog reads on no instance: None ("None")."""
    tracked, masked, mask = _diff_fields(type(new), fields, old is None)
    nothing = None if as_json else smart_str(None)
    diff = {}
    for field in tracked:
        old_value = nothing if old is None else get_field_value(old, field, as_json)
        new_value = get_field_value(new, field, as_json)
        if old_value == new_value:
            continue
        if field.name in masked:
            diff[field.name] = (mask(smart_str(old_value)), mask(smart_str(new_value)))
        elif not as_json:
            diff[field.name] = (smart_str(old_value), smart_str(new_value))
        else:
            diff[field.name] = (
                old_value if is_primitive(old_value) else smart_str(old_value),
                new_value if is_primitive(new_value) else smart_str(new_value),
            )
    return diff or None


@functools.cache
def _diff_fields(
    model: type[models.Model], fields_to_check: tuple[str, ...] | None, created: bool
) -> tuple[list[Any], frozenset[str], Callable[[str], str]]:
    """What model_instance_diff compares for `model`: every tracked field (reverse
    relations included) for a creation, else the concrete fields named; filtered by
    the model's auditlog registration (registered once, at start-up)."""
    fields = (
        [f for f in model._meta.get_fields() if track_field(f)] if created else list(dict.fromkeys(model._meta.fields))
    )
    if fields_to_check:
        fields = [
            f
            for f in fields
            if (isinstance(f, models.ForeignKey) and f.attname in fields_to_check) or f.name in fields_to_check
        ]
    options = auditlog.get_model_fields(model)
    if options["include_fields"]:
        fields = [f for f in fields if f.name in options["include_fields"]]
    if options["exclude_fields"]:
        fields = [f for f in fields if f.name not in options["exclude_fields"]]
    return fields, frozenset(options["mask_fields"]), get_mask_function(options.get("mask_callable"))


def _entry(instance: models.Model, action: int, changes: dict | None) -> LogEntry:
    """One entry as LogEntryManager.log_create builds it and the context's
    pre_save receivers (auditlog's `_set_extra_data`, our `fill_system_actor`)
    complete it."""
    try:
        representation = smart_str(instance)
    except ObjectDoesNotExist:
        representation = DEFAULT_OBJECT_REPR
    entry = LogEntry(
        content_type=ContentType.objects.get_for_model(instance),
        object_pk=str(instance.pk),
        object_id=instance.pk if isinstance(instance.pk, int) else None,
        object_repr=representation,
        serialized_data=LogEntry.objects._get_serialized_data_or_none(instance),
        action=action,
        changes=changes,
        additional_data=_scope_of(instance) or None,
        cid=get_cid(),
    )
    context = _current()
    if context is not None:
        actor = context.get("actor")
        if isinstance(actor, get_user_model()):
            entry.actor = actor
            entry.actor_email = getattr(actor, "email", None)
        for key, value in context.items():
            if key != "actor" and hasattr(LogEntry, key):
                setattr(entry, key, value() if callable(value) else value)
    elif entry.actor_id is None and not entry.actor_email:
        entry.actor_email = SYSTEM_ACTOR
    return entry


def _scope_of(instance: models.Model) -> dict[str, Any]:
    getter = getattr(instance, "get_additional_data", None)
    return dict(getter() or {}) if callable(getter) else {}


def audited_action(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an admin action: each selected object gets an entry naming the
    action and who ran it, whatever the action itself writes (or doesn't)."""

    @functools.wraps(func)
    def wrapper(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet) -> Any:
        pks = list(queryset.values_list("pk", flat=True))
        response = func(modeladmin, request, queryset)
        audit_bulk(
            model=queryset.model,
            pks=pks,
            changes={},
            extra={"admin_action": func.__name__},
        )
        return response

    return wrapper


# --- Requests ---------------------------------------------------------------


class AuditMiddleware(AuditlogMiddleware):
    """auditlog's middleware, reading the client address the way the login
    lockout does (django-axes: REMOTE_ADDR, or X-Forwarded-For only behind the
    configured number of proxies). auditlog alone believes any X-Forwarded-For,
    so a clerk could write someone else's address into the trail."""

    @staticmethod
    def _get_remote_addr(request: HttpRequest) -> str | None:
        return get_client_ip_address(request)

    @staticmethod
    def _get_remote_port(request: HttpRequest) -> int | None:
        return None  # X-Forwarded-Port is as forgeable as X-Forwarded-For

    def __call__(self, request: HttpRequest) -> Any:
        set_cid(request)
        data = self.get_extra_data(request)
        with audit_context(actor=data["actor"], remote_addr=data["remote_addr"]):
            return self.get_response(request)
