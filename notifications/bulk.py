"""The outbox written by one SQL statement, for events counted in hundreds of
thousands (a bill run): the same rows `notify` writes, without rendering a
template per message.

A message's text is a template rendered with its event's context. For events
whose context is a few plain values (numbers, dates, amounts, a link) and a
label from a short list (the kind of service), the text is the same skeleton
for every message of one (language, channel kind, label), with the values put
in. So each skeleton is rendered once, here, by the same templates and the
same post-processing as `message_render` (bidi marks dropped and accents folded
for SMS), with a private-use marker where each value goes; PostgreSQL puts the
values in (`replace`), formats amounts with the locale's own symbols, sizes
SMS, and inserts with `ON CONFLICT (dedupe_key) DO NOTHING`, as `outbox_write`.

What cannot be done this way (a locale whose amounts are not grouped by
three, characters outside the Basic Multilingual Plane in a text) raises
`BulkUnsupported` before anything is written; the caller then takes the
per-message path. notifications/tests/test_bulk.py and the bill run's tests
hold the rows equal to those of `message_rows`, field by field.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import ChannelKind, ContactChannel, Language
from core.money import _money_format, babel_locale, currency_exponent

from .channels.registry import quiet_channel_kinds
from .events import EventType
from .models import Message
from .services import _kick_relay_on_commit, _localise, gsm7_fold, quiet_hours_end
from .sms import GSM7_BASIC, GSM7_EXTENDED, GSM7_PART, GSM7_SINGLE, UCS2_PART, UCS2_SINGLE


class BulkUnsupported(Exception):
    """This event or locale cannot be written set-based; use `notify`/`outbox_write`."""


@dataclass(frozen=True)
class SqlText:
    """A value computed per row: `prefix` (a constant, passed as a parameter)
    followed by the SQL expression. Its values must be plain ASCII (numbers,
    codes, links): SMS folding would not change them, and is not applied."""

    expr: str
    prefix: str = ""


@dataclass(frozen=True)
class SqlDate:
    """A date column, shown as 25/11/2026 in every language (as `_localise`)."""

    expr: str


@dataclass(frozen=True)
class SqlMoney:
    """A non-negative amount column in `currency`, formatted per CLDR in each
    message's language (as `format_money`)."""

    expr: str
    currency: str


@dataclass(frozen=True)
class SqlChoice:
    """A value from a short list, chosen per row by a SQL expression: `values`
    maps what the expression yields to the context value (a lazy label, say)."""

    expr: str
    values: Mapping[str, Any]


SqlValue = SqlText | SqlDate | SqlMoney | SqlChoice

_BIDI_MARKS = ("\u200f", "\u200e")
_MARKER_BASE = 0xE000  # private use: no template, folding or locale produces one


def _sms_clean(text: str, language: str) -> str:
    """What `message_render` does to an SMS after rendering, character by character."""
    for mark in _BIDI_MARKS:
        text = text.replace(mark, "")
    return text if language == "ar" else gsm7_fold(text)


def _bmp_only(text: str) -> bool:
    return all(ord(ch) <= 0xFFFF for ch in text)


@dataclass(frozen=True)
class _Money:
    """How one language writes amounts of one currency, for to_char + translate."""

    prefix: str
    suffix: str
    neg_prefix: str
    neg_suffix: str
    group: str
    decimal: str


def _money_symbols(currency: str, language: str) -> _Money:
    fmt = _money_format(babel_locale(language), currency)
    exponent = currency_exponent(currency)
    pattern = fmt.pattern
    plain = (
        fmt.fast
        and tuple(pattern.grouping) == (3, 3)
        and pattern.int_prec[0] == 1
        and tuple(pattern.frac_prec) == (exponent, exponent)
        and len(fmt.group) == 1
        and len(fmt.decimal) == 1
    )
    if not plain:
        raise BulkUnsupported(f"amounts in {currency} for {language!r} are not written the plain way")
    (prefix, suffix), (neg_prefix, neg_suffix) = fmt.affixes
    return _Money(prefix, suffix, neg_prefix, neg_suffix, fmt.group, fmt.decimal)


def _to_char_pattern(currency: str) -> str:
    exponent = currency_exponent(currency)
    return "FM999,999,999,999,990" + ("." + "0" * exponent if exponent else "")


@dataclass
class _Variant:
    language: str
    channel_kind: str
    choice: tuple[str, ...]
    body: str
    subject: str
    money: dict[str, _Money]
    params: list[str | None]  # WhatsApp parameters: a constant, or None where a row value goes


def _variants(
    *, event: EventType, context: Mapping[str, Any], markers: Mapping[str, str], currency_of: Mapping[str, str]
) -> list[_Variant]:
    choice_keys = [k for k, v in context.items() if isinstance(v, SqlChoice)]
    choice_lists = [list(context[k].values.items()) for k in choice_keys]
    variants = []
    for language, kind in itertools.product(Language.values, ChannelKind.values):
        for combination in itertools.product(*choice_lists) if choice_keys else [()]:
            chosen = {key: value for key, (_db, value) in zip(choice_keys, combination, strict=True)}
            fixed = _localise({k: v for k, v in context.items() if not isinstance(v, SqlValue)}, language)
            render_context = {"operator": settings.SELFCARE_OPERATOR_NAME, **fixed, **chosen, **markers}
            with translation.override(language):
                body = render_to_string(f"{event.templates}.{language}.txt", render_context).strip()
                subject = ""
                if kind == ChannelKind.EMAIL:
                    subject = render_to_string(f"{event.templates}.subject.{language}.txt", render_context).strip()
                params: list[str | None] = []
                if kind == ChannelKind.WHATSAPP:
                    for key in event.whatsapp_params:
                        value = context.get(key, "")
                        if isinstance(value, SqlChoice):
                            params.append(str(chosen[key]))
                        elif isinstance(value, SqlValue):
                            params.append(None)
                        else:
                            params.append(str(fixed.get(key, "")))
            money = {key: _money_symbols(currency, language) for key, currency in currency_of.items()}
            if kind == ChannelKind.SMS:
                body = _sms_clean(body, language)
                money = {
                    key: _Money(*(_sms_clean(part, language) for part in vars(m).values())) for key, m in money.items()
                }
            texts = [body, subject, *(part for m in money.values() for part in vars(m).values())]
            if not all(_bmp_only(text) for text in texts):
                # An SMS's size would need UTF-16 units, not characters.
                raise BulkUnsupported("a text has characters outside the Basic Multilingual Plane")
            variants.append(
                _Variant(
                    language=language,
                    channel_kind=kind,
                    choice=tuple(db for db, _value in combination),
                    body=body,
                    subject=subject,
                    money=money,
                    params=params,
                )
            )
    return variants


def outbox_insert_select(
    *,
    event: EventType,
    source: str,
    params: Sequence[Any],
    subscriber: str,
    object_key: str,
    reference: str,
    context: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> int:
    """Write the event's message for every row of `source` and every eligible
    channel of that row's subscriber, in one statement; returns rows written.

    `source` is the FROM clause (with its WHERE) the other arguments' SQL
    expressions read, and `params` its parameters. `subscriber`, `object_key`
    and `reference` are SQL expressions (the subscriber id, the object's key in
    the dedupe key, the reference shown to staff). `context` maps each context
    key to a `SqlText`, `SqlDate`, `SqlMoney` or `SqlChoice`, or a constant.
    Runs in the caller's transaction; the relay is kicked when it commits.
    """
    if connection.vendor != "postgresql":
        raise BulkUnsupported("set-based outbox writes need PostgreSQL")
    if event.sealed_param:
        raise BulkUnsupported("an event with a sealed parameter")
    now = now or timezone.now()
    row_keys = [k for k, v in context.items() if isinstance(v, SqlText | SqlDate | SqlMoney)]
    markers = {key: chr(_MARKER_BASE + i) for i, key in enumerate(row_keys)}
    currency_of = {k: v.currency for k, v in context.items() if isinstance(v, SqlMoney)}
    choice_keys = [k for k, v in context.items() if isinstance(v, SqlChoice)]
    variants = _variants(event=event, context=context, markers=markers, currency_of=currency_of)

    # The rows of the source, with each row value as a column (money unformatted).
    src_columns = [f"({subscriber}) AS subscriber_id", f"({object_key}) AS object_key", f"({reference}) AS reference"]
    src_params: list[Any] = []
    for i, key in enumerate(row_keys):
        value = context[key]
        if isinstance(value, SqlText):
            src_columns.append(f"(%s || ({value.expr})) AS v{i}")
            src_params.append(value.prefix)
        elif isinstance(value, SqlDate):
            src_columns.append(f"to_char({value.expr}, 'DD/MM/YYYY') AS v{i}")
        else:
            src_columns.append(f"({value.expr}) AS v{i}")
    for j, key in enumerate(choice_keys):
        src_columns.append(f"(({context[key].expr}))::text AS c{j}")

    # One VALUES row per variant: its texts, money symbols and WhatsApp constants.
    money_keys = list(currency_of)
    variant_columns = ["language", "channel_kind", *(f"c{j}" for j in range(len(choice_keys))), "body", "subject"]
    for m in range(len(money_keys)):
        variant_columns += [f"m{m}_p", f"m{m}_s", f"m{m}_np", f"m{m}_ns", f"m{m}_g", f"m{m}_d"]
    param_count = len(event.whatsapp_params)
    variant_columns += [f"w{k}" for k in range(param_count)]
    values_sql, values_params = [], []
    for variant in variants:
        row = [variant.language, variant.channel_kind, *variant.choice, variant.body, variant.subject]
        for key in money_keys:
            m = variant.money[key]
            row += [m.prefix, m.suffix, m.neg_prefix, m.neg_suffix, m.group, m.decimal]
        row += variant.params + [None] * (param_count - len(variant.params))
        values_sql.append("(" + ", ".join(["%s::text"] * len(row)) + ")")
        values_params += row

    def money_sql(i: int, key: str) -> str:
        m = money_keys.index(key)
        pattern = _to_char_pattern(currency_of[key])
        digits = f"translate(to_char(abs(s.v{i}), '{pattern}'), ',.', v.m{m}_g || v.m{m}_d)"
        return (
            f"(CASE WHEN s.v{i} < 0 THEN v.m{m}_np || {digits} || v.m{m}_ns ELSE v.m{m}_p || {digits} || v.m{m}_s END)"
        )

    # Each row value once per message, in its language (amounts), as column x{i}.
    value_columns = [
        f"{money_sql(i, key) if key in currency_of else f's.v{i}'} AS x{i}" for i, key in enumerate(row_keys)
    ]
    value_sql = {key: f"x{i}" for i, key in enumerate(row_keys)}

    def filled(template: str) -> str:
        expr = template
        for key, marker in markers.items():
            expr = f"replace({expr}, '{marker}', {value_sql[key]})"
        return expr

    whatsapp_items = []
    for k, key in enumerate(event.whatsapp_params):
        whatsapp_items.append(f"COALESCE(w{k}, {value_sql[key]})" if key in value_sql else f"w{k}")
    whatsapp_json = f"jsonb_build_array({', '.join(whatsapp_items)})" if whatsapp_items else "'[]'::jsonb"

    verified = "c.verified_at IS NOT NULL" if event.verified_only else "TRUE"
    preference = "TRUE"
    if event.verified_only and event.preference is not None:
        field = ContactChannel._meta.get_field(event.preference)
        preference = f"c.{connection.ops.quote_name(field.column)}"
    choice_join = "".join(f" AND v.c{j} = s.c{j}" for j in range(len(choice_keys)))
    wait_until = quiet_hours_end(now=now)
    quiet_kinds = [k for k in ChannelKind.values if k in quiet_channel_kinds()] if not event.urgent else []

    # SMS sizing as sms_length does it: GSM-7 when every character is in its
    # alphabet (a regular expression: linear, where translate() with the whole
    # alphabet was quadratic), extension characters counting two.
    not_gsm = "[^" + "".join(f"\\u{ord(ch):04x}" for ch in sorted(GSM7_BASIC | GSM7_EXTENDED)) + "]"
    extended = "[^" + "".join(f"\\u{ord(ch):04x}" for ch in sorted(GSM7_EXTENDED)) + "]"
    table = Message._meta.db_table
    channel_table = ContactChannel._meta.db_table
    # The source's rows first (materialized), then each one's channels through the
    # subscriber index (a LATERAL subquery: an index lookup per row, never a scan
    # of every channel), then the variant of each message by one hash join; then
    # the texts, then their size.
    sql = f"""
        WITH s AS MATERIALIZED (SELECT {", ".join(src_columns)} FROM {source}),
        v ({", ".join(variant_columns)}) AS MATERIALIZED (VALUES {", ".join(values_sql)}),
        sc AS MATERIALIZED (
            SELECT s.*, c.id AS channel_id, c.kind AS channel_kind, c.address, c.language
            FROM s
            CROSS JOIN LATERAL (
                SELECT c.id, c.kind, c.address, c.language FROM {channel_table} c
                WHERE c.subscriber_id = s.subscriber_id AND {verified} AND {preference}
                OFFSET 0
            ) c
        ),
        valued AS (
            SELECT s.subscriber_id, s.object_key, s.reference, s.channel_id, s.channel_kind,
                   s.address, s.language, v.body AS body_t, v.subject AS subject_t,
                   {", ".join([*(f"v.w{k}" for k in range(param_count)), *value_columns]) or "NULL AS none"}
            FROM sc s
            JOIN v ON v.language = s.language AND v.channel_kind = s.channel_kind{choice_join}
        ),
        texts AS (
            SELECT %s || ':' || object_key || ':' || channel_id AS dedupe_key,
                   subscriber_id, reference, channel_id, channel_kind, address, language,
                   {filled("subject_t")} AS subject,
                   {filled("body_t")} AS body,
                   CASE WHEN channel_kind = 'whatsapp' THEN %s ELSE '' END AS template_name,
                   CASE WHEN channel_kind = 'whatsapp' THEN {whatsapp_json} ELSE '[]'::jsonb END AS template_params,
                   CASE WHEN channel_kind = ANY(%s) THEN %s::timestamptz ELSE %s::timestamptz END AS next_attempt_at
            FROM valued
        ),
        sized AS (
            SELECT *,
                   channel_kind = 'sms' AND body !~ %s AS gsm,
                   char_length(body) + CASE WHEN body ~ %s
                       THEN char_length(regexp_replace(body, %s, '', 'g')) ELSE 0 END AS units_gsm,
                   char_length(body) AS units_ucs
            FROM texts
        )
        INSERT INTO {table} (
            dedupe_key, event, subscriber_id, reference, channel_id, channel_kind, address, language,
            subject, body, encoding, segments, urgent, template_name, template_params, status, attempts,
            next_attempt_at, claimed_at, provider, provider_message_id, last_error, created_at,
            sent_at, delivered_at, read_at
        )
        SELECT dedupe_key, %s, subscriber_id, reference, channel_id, channel_kind, address, language,
               subject, body,
               CASE WHEN channel_kind <> 'sms' THEN '' WHEN gsm THEN 'gsm7' ELSE 'ucs2' END,
               CASE WHEN channel_kind <> 'sms' THEN 0
                    WHEN gsm THEN
                        CASE WHEN units_gsm <= {GSM7_SINGLE} THEN (units_gsm > 0)::int
                             ELSE ceil(units_gsm / {GSM7_PART}.0)::int END
                    ELSE CASE WHEN units_ucs <= {UCS2_SINGLE} THEN (units_ucs > 0)::int
                              ELSE ceil(units_ucs / {UCS2_PART}.0)::int END END,
               %s, template_name, template_params, 'pending', 0,
               next_attempt_at, NULL, '', NULL, '', %s, NULL, NULL, NULL
        FROM sized
        ON CONFLICT (dedupe_key) DO NOTHING
    """  # noqa: S608 - identifiers from the models, every value a parameter
    ext_chars = "[" + extended[2:]  # the extension characters themselves
    # In the statement's order.
    all_params = [
        *src_params, *params,
        *values_params,
        event.name, f"selfcare_{event.name}", quiet_kinds, wait_until or now, now,
        not_gsm, ext_chars, extended,
        event.name, event.urgent, now,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        created = max(cursor.rowcount, 0)
    if created:
        _kick_relay_on_commit()
    return created
