"""Plain SQL for the few reads that every subscriber page makes.

Building and compiling an ORM query costs more CPU than PostgreSQL spends
answering it (measured: 2.9 ms to build the dashboard's query, 1.0 ms to run it),
so the hottest selectors write their SQL once, as module constants, and map rows
to small read-only objects. The SQL stays portable: the demo runs it on SQLite,
which hands back aggregated decimals as floats and dates as text; these helpers
give every caller the same Python types on both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_decimal(value: Any) -> Decimal | None:
    """A numeric column as Decimal (SQLite returns floats for sums and ints for zero)."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def as_date(value: Any) -> dt.date | None:
    """A date column as date (SQLite returns the text of an aggregated date)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def as_time(value: Any) -> dt.time | None:
    """A time column as time (SQLite returns its text)."""
    if value is None or isinstance(value, dt.time):
        return value
    return dt.time.fromisoformat(str(value))


def in_list(values: Sequence[str]) -> str:
    """`('a', 'b')` for constants baked into a statement (status names, never user input)."""
    if not all(v.replace("_", "").isalnum() for v in values):
        raise ValueError(f"not a plain constant: {values!r}")
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def int_array(values: Iterable[int]) -> str:
    """Ids as PostgreSQL's array text, `{1,2,3}`, bound as one parameter and cast in
    the statement (`= ANY(%s::bigint[])`). psycopg adapts a list element by element
    in Python: for a bill-run chunk's 10,000 ids, a tenth of a second of the worker's
    CPU per statement, where PostgreSQL parses this text in C."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


def columns(model: type[Model], alias: str) -> str:
    """`alias.col1, alias.col2, …` for every concrete field, in `instances_from_row`'s order."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


def instance_from_row(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from the values `columns(model, …)` selected, with the
    same conversions the ORM applies (SQLite's text dates and booleans)."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: a thread-local look-up per read
    converters_of = _converters(model, conn.vendor)
    converted = []
    for value, (_field, col, converters) in zip(values, converters_of, strict=True):
        for converter in converters:
            value = converter(value, col, conn)
        converted.append(value)
    return model.from_db(conn.alias, [f.attname for f, _, _ in converters_of], converted)


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple[Field, Any, list]]:
    table = model._meta.db_table
    out = []
    for field in model._meta.concrete_fields:
        col = field.get_col(table)
        out.append((field, col, [*connection.ops.get_db_converters(col), *field.get_db_converters(connection)]))
    return out


# --- Writes ------------------------------------------------------------------


def insert_returning(model: type[M], objs: Sequence[M], *, ignore_conflicts: bool = False) -> list[Any]:
    """INSERT `objs` in one statement and return the new primary keys, set on the
    objects too (unless `ignore_conflicts`, where skipped rows return nothing).

    What `bulk_create` sends, with the same value preparation per field
    (`pre_save`, so auto_now_add is filled in, then `get_db_prep_save`), but the
    statement is built once per model and row count and kept: compiling Django's
    InsertQuery cost a payment more CPU than PostgreSQL spent running its five
    INSERTs. Sends no signal, as bulk_create. Portable: SQLite has had
    `RETURNING` and `ON CONFLICT DO NOTHING` since 3.35.
    """
    if not objs:
        return []
    # The connection itself, not django.db.connection: every attribute read through
    # that proxy is a thread-local look-up, and each field's preparation reads several.
    conn = connections[DEFAULT_DB_ALIAS]
    fields = _insert_fields(model)
    params: list[Any] = []
    for obj in objs:
        # A foreign key to a row saved since this object was made (Allocation(payment=…)) gets its id.
        obj._prepare_related_fields_for_save(operation_name="insert_returning")
        for field in fields:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), conn))
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(model, len(objs), ignore_conflicts, conn.vendor), params)
        pks = [row[0] for row in cursor.fetchall()]
    if not ignore_conflicts:
        for obj, pk in zip(objs, pks, strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = conn.alias
    return pks


# psycopg keeps the parse of a statement (its %s turned into $n) only up to this
# many parameters; a longer one is parsed again at every call.
PSYCOPG_CACHED_PARAMS = 50


def rows_per_parsed_statement(model: type[Model]) -> int:
    """How many rows of `model` an INSERT may carry and stay parsed once by psycopg:
    for a few rows on a hot path (a payment's audit entries), two short statements
    cost less CPU than one long one parsed every time."""
    return max(1, PSYCOPG_CACHED_PARAMS // len(_insert_fields(model)))


@cache
def _insert_fields(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@lru_cache(maxsize=64)  # per row count: a bill run's batches vary; keep the few in use
def _insert_sql(model: type[Model], count: int, ignore_conflicts: bool, vendor: str) -> str:
    quote = connection.ops.quote_name
    columns_sql = ", ".join(quote(f.column) for f in _insert_fields(model))
    row = "(" + ", ".join(["%s"] * len(_insert_fields(model))) + ")"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns_sql}) VALUES {', '.join([row] * count)}"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + f" RETURNING {quote(model._meta.pk.column)}"
    )
