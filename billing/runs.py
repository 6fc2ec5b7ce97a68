"""Bill runs: one period billed for every active postpaid account of a scope.

A run is planned as chunks of consecutive account ids (SELFCARE_BILL_RUN_CHUNK
accounts each), and each chunk is one Celery task and one transaction: its
bills, their lines, the credit they use and their bill-issued messages commit
together or not at all. Workers on several machines share a run by taking
chunks; a chunk is claimed by locking its row (SKIP LOCKED), so a task
delivered twice finds it taken, and a worker that dies leaves it pending.

On PostgreSQL a chunk is four statements, whatever its size (`_chunk_bill_sql`):
an `INSERT … SELECT` of bills with their lines, priced in SQL exactly as
`tariffs.bill_compute` prices one bill, with `services.bill_issue`'s extra lines
(the SMS alert fee, plan-change proration, the correction of estimated bills;
billing/tests/test_bill_runs.py and test_estimates.py hold them to the same
answer); a lock of the accounts that hold credit and the credit applied; and the
outbox rows (`messages.bills_announce_set`). The rare bill whose credits exceed
its charges takes a few more: its credit-carried line, then, account by account,
the carried credit paying the account's open bills and the rest its credit
(`services.account_credit_carry`, as a payment).
Elsewhere (the SQLite demo) each account goes through `services.bill_issue`.

Nothing is billed twice: the (account, period) constraint holds it, the
INSERT skips conflicts, and lines, credit and messages follow only the bills
this chunk inserted. A re-run, or a resumed run, bills what is missing.

The counts are the chunks' own, summed under the run's row lock each time a
chunk ends, so they are right whichever chunk ends last; the last one to end
sets the run finished (or failed, when a chunk failed: resuming retries it).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Agency, Subscriber, User
from core.exceptions import ApplicationError
from core.money import currency_exponent, quantize
from core.sql import int_array
from notifications.bulk import BulkUnsupported

from .messages import bills_announce, bills_announce_set
from .models import (
    PRIMARY_UNIT,
    UTILITY_KINDS,
    Bill,
    BillLine,
    BillRun,
    BillRunChunk,
    Consumption,
    Plan,
    PlanChange,
    PlanLevy,
    PlanTier,
    ServiceAccount,
    SmsAlertSubscription,
    Unit,
)
from .services import account_credit_carry, bill_due_date, bill_issue, bills_with_channels

logger = logging.getLogger(__name__)


class BillRunRefused(ApplicationError):
    pass


# --- Scope and usage ---------------------------------------------------------


def period_end(period: dt.date) -> dt.date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def run_scope(*, period: dt.date, agency_id: int | None, billing_cycle: int | None) -> QuerySet[ServiceAccount]:
    """The accounts a run bills: active, postpaid, opened by the end of the period."""
    accounts = ServiceAccount.objects.filter(
        status=ServiceAccount.Status.ACTIVE,
        billing_mode=ServiceAccount.BillingMode.POSTPAID,
        opened_on__lte=period_end(period),
    )
    if agency_id is not None:
        accounts = accounts.filter(subscriber__agency_id=agency_id)
    if billing_cycle is not None:
        accounts = accounts.filter(billing_cycle=billing_cycle)
    return accounts


def quantity_quantize(value: Decimal) -> Decimal:
    """A quantity to the consumption columns' precision, half up (as SQL's round)."""
    return value.quantize(Decimal("0.001"), rounding="ROUND_HALF_UP")


def usage_for_billing(
    *, account: ServiceAccount, period: dt.date, history: int | None = None
) -> tuple[dict[str, Decimal], bool] | None:
    """What to bill `account` on for `period`: (usage, estimated), or None to skip.

    The period's readings when there are any. A meter without one is estimated
    from the average of its last `history` readings (SELFCARE_ESTIMATE_PERIODS);
    with no reading ever, it is skipped. Telecom usage comes from the network,
    not a meter: no usage rows is a month of no usage, billed its monthly fee.
    """
    history = history or settings.SELFCARE_ESTIMATE_PERIODS
    usage = {c.unit: c.quantity for c in Consumption.objects.filter(account=account, period=period)}
    if usage or account.kind not in UTILITY_KINDS:
        return usage, False
    unit = PRIMARY_UNIT[account.kind]
    recent = list(
        Consumption.objects.filter(account=account, unit=unit, period__lt=period)
        .order_by("-period")
        .values_list("quantity", flat=True)[:history]
    )
    if not recent:
        return None
    return {unit: quantity_quantize(sum(recent, Decimal(0)) / len(recent))}, True


# --- Starting, resuming --------------------------------------------------------


def bill_run_start(
    *,
    period: dt.date,
    agency: Agency | None = None,
    billing_cycle: int | None = None,
    created_by: User | None = None,
    issue_date: dt.date | None = None,
    chunk_size: int | None = None,
) -> BillRun:
    """Record a run and plan its chunks, all pending: the caller hands them to
    the workers (billing.tasks.bill_run_enqueue) or processes them itself."""
    today = timezone.localdate()
    period_check(period)
    if billing_cycle is not None and not 1 <= billing_cycle <= 31:
        raise BillRunRefused(_("A billing cycle is a number from 1 to 31."), code="bad_cycle")
    chunk_size = chunk_size or settings.SELFCARE_BILL_RUN_CHUNK
    with transaction.atomic():
        run = BillRun.objects.create(
            period=period,
            agency=agency,
            billing_cycle=billing_cycle,
            issue_date=issue_date or today,
            created_by=created_by,
        )
        chunks = [
            BillRunChunk(run=run, first_account_id=low, last_account_id=high, accounts=count)
            for low, high, count in _plan_chunks(run=run, chunk_size=chunk_size)
        ]
        BillRunChunk.objects.bulk_create(chunks, batch_size=1000)
        run.chunks_total = len(chunks)
        run.accounts_in_scope = sum(c.accounts for c in chunks)
        run.status = BillRun.Status.RUNNING
        run.started_at = timezone.now()
        if not chunks:
            run.status, run.finished_at = BillRun.Status.FINISHED, run.started_at
        run.save(update_fields=["chunks_total", "accounts_in_scope", "status", "started_at", "finished_at"])
    return run


def _plan_chunks(*, run: BillRun, chunk_size: int) -> list[tuple[int, int, int]]:
    """(first id, last id, accounts) of consecutive id ranges of `chunk_size`
    accounts in scope, numbered by the database (portable SQL: a window function)."""
    scope = run_scope(period=run.period, agency_id=run.agency_id, billing_cycle=run.billing_cycle)
    inner, params = scope.values("id").query.sql_with_params()
    sql = (
        "SELECT MIN(id), MAX(id), COUNT(*) FROM ("  # noqa: S608 - the ORM's own SQL
        f"SELECT q.id, (ROW_NUMBER() OVER (ORDER BY q.id) - 1) / %s AS chunk FROM ({inner}) q"
        ") t GROUP BY chunk ORDER BY chunk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [chunk_size, *params])
        return [(int(low), int(high), int(count)) for low, high, count in cursor.fetchall()]


def bill_runs_stalled(*, stale_seconds: int | None = None) -> list[BillRun]:
    """Running runs with pending chunks and no chunk ended for `stale_seconds`
    (SELFCARE_BILL_RUN_STALE_SECONDS): their tasks were lost (a broker emptied,
    a queue purged). Handing the chunks out again is harmless: a chunk taken or
    done is left alone."""
    stale = timezone.now() - dt.timedelta(seconds=stale_seconds or settings.SELFCARE_BILL_RUN_STALE_SECONDS)
    runs = BillRun.objects.filter(status=BillRun.Status.RUNNING, chunks__status=BillRunChunk.Status.PENDING).distinct()
    return [
        run
        for run in runs
        if (run.chunks.aggregate(last=Max("finished_at"))["last"] or run.started_at or run.created_at) < stale
    ]


def bill_run_pending_chunks(*, run: BillRun) -> list[int]:
    """The chunks a worker should be given (billing.tasks.bill_run_enqueue sends them)."""
    return list(run.chunks.filter(status=BillRunChunk.Status.PENDING).order_by("pk").values_list("pk", flat=True))


def bill_run_resume(*, run: BillRun) -> int:
    """Make pending again what a run has not done (its failed chunks; pending ones
    whose task was lost stay pending); returns how many chunks are pending, for
    the caller to hand out again. Harmless on a finished run."""
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run.pk)
        if run.status == BillRun.Status.FINISHED:
            return 0
        retried = run.chunks.filter(status=BillRunChunk.Status.FAILED).update(
            status=BillRunChunk.Status.PENDING, error=""
        )
        pending = run.chunks.filter(status=BillRunChunk.Status.PENDING).count()
        if not pending:
            return 0
        BillRun.objects.filter(pk=run.pk).update(status=BillRun.Status.RUNNING, finished_at=None)
        _recount(run_id=run.pk)
    logger.info("bill run %s resumed: %s chunks (%s had failed)", run.pk, pending, retried)
    return pending


# --- One chunk -------------------------------------------------------------------


@dataclass
class ChunkCounts:
    accounts: int = 0
    billed: int = 0
    estimated: int = 0
    already_billed: int = 0
    skipped: int = 0
    messages: int = 0


def bill_run_chunk_process(*, chunk_id: int, before_commit: Callable[[BillRunChunk], None] | None = None) -> str:
    """Bill one chunk; returns "done", or "taken" when another worker holds it or
    it is done already. An error rolls the chunk back, marks it failed (with the
    error, for the run's page) and is raised again for the task to retry.

    `before_commit` is called inside the chunk's transaction, last (the crash
    tests use it to fail a chunk after all its writes)."""
    try:
        with transaction.atomic():
            # The chunk's row only (of=self): locking its run too would make every
            # other worker skip every other chunk while this one is billed.
            chunk = (
                BillRunChunk.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("run")
                .filter(pk=chunk_id, status__in=[BillRunChunk.Status.PENDING, BillRunChunk.Status.FAILED])
                .first()
            )
            if chunk is None:
                return "taken"
            counts = _chunk_bill(chunk)
            BillRunChunk.objects.filter(pk=chunk.pk).update(
                status=BillRunChunk.Status.DONE, attempts=chunk.attempts + 1, error="",
                finished_at=timezone.now(), **vars(counts),
            )  # fmt: skip
            if before_commit is not None:
                before_commit(chunk)
            # Last, so the run's row is locked for the shortest time.
            _recount(run_id=chunk.run_id)
    except Exception as exc:
        logger.exception("bill run chunk %s failed", chunk_id)
        with transaction.atomic():
            marked = (
                BillRunChunk.objects.filter(pk=chunk_id)
                .exclude(status=BillRunChunk.Status.DONE)
                .update(status=BillRunChunk.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
            )
            run_id = BillRunChunk.objects.filter(pk=chunk_id).values_list("run_id", flat=True).first()
            if marked and run_id is not None:
                _recount(run_id=run_id)
        raise
    return "done"


def _chunk_bill(chunk: BillRunChunk) -> ChunkCounts:
    if connection.vendor == "postgresql":
        return _chunk_bill_sql(chunk)
    return _chunk_bill_python(chunk)


def _recount(*, run_id: int) -> None:
    """The run's counts, summed from its chunks under the run's row lock; the
    chunk that finds nothing pending sets the run's end (compare-and-set on
    the status, so only one does)."""
    run = BillRun.objects.select_for_update().get(pk=run_id)
    # A statement after the lock: it sees every chunk committed before we got it.
    done = Q(status=BillRunChunk.Status.DONE)
    totals = run.chunks.aggregate(
        accounts_done=Sum("accounts", filter=done, default=0),
        accounts_other=Sum("accounts", filter=~done, default=0),
        billed=Sum("billed", filter=done, default=0),
        estimated=Sum("estimated", filter=done, default=0),
        already_billed=Sum("already_billed", filter=done, default=0),
        skipped=Sum("skipped", filter=done, default=0),
        failed=Sum("accounts", filter=Q(status=BillRunChunk.Status.FAILED), default=0),
        chunks_done=Count("pk", filter=done),
        chunks_failed=Count("pk", filter=Q(status=BillRunChunk.Status.FAILED)),
        chunks_pending=Count("pk", filter=Q(status=BillRunChunk.Status.PENDING)),
    )
    errors = "\n".join(
        f"{first}–{last}: {error}"
        for first, last, error in run.chunks.filter(status=BillRunChunk.Status.FAILED)
        .order_by("first_account_id")
        .values_list("first_account_id", "last_account_id", "error")[:50]
    )
    update = {
        "accounts_in_scope": totals["accounts_done"] + totals["accounts_other"],
        "billed": totals["billed"],
        "estimated": totals["estimated"],
        "already_billed": totals["already_billed"],
        "skipped": totals["skipped"],
        "failed": totals["failed"],
        "chunks_done": totals["chunks_done"],
        "errors": errors,
    }
    BillRun.objects.filter(pk=run.pk).update(**update)
    if totals["chunks_pending"] == 0:
        ended = BillRun.Status.FAILED if totals["chunks_failed"] else BillRun.Status.FINISHED
        BillRun.objects.filter(pk=run.pk, status=BillRun.Status.RUNNING).update(
            status=ended, finished_at=timezone.now()
        )


# --- The portable path: one bill_issue per account (SQLite, the demo) -------------


def _chunk_bill_python(chunk: BillRunChunk) -> ChunkCounts:
    run = chunk.run
    counts = ChunkCounts()
    accounts = (
        run_scope(period=run.period, agency_id=run.agency_id, billing_cycle=run.billing_cycle)
        .filter(id__gte=chunk.first_account_id, id__lte=chunk.last_account_id)
        .order_by("id")
    )
    billed = set(Bill.objects.filter(account__in=accounts, period=run.period).values_list("account_id", flat=True))
    for account in accounts:
        counts.accounts += 1
        if account.pk in billed:
            counts.already_billed += 1
            continue
        found = usage_for_billing(account=account, period=run.period)
        if found is None:
            counts.skipped += 1
            continue
        usage, estimated = found
        bill_issue(account=account, period=run.period, issue_date=run.issue_date, usage=usage, estimated=estimated)
        if estimated:
            counts.estimated += 1
        else:
            counts.billed += 1
    return counts


# --- The set-based path: PostgreSQL ----------------------------------------------


def _t(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_UTILITY_UNITS = ", ".join(f"('{kind}', '{PRIMARY_UNIT[kind]}')" for kind in UTILITY_KINDS)
_UTILITY_KINDS = ", ".join(f"'{kind}'" for kind in UTILITY_KINDS)

# The chunk's accounts in scope; {agency_join} and {filters} add the run's scope.
_SCOPE_SQL = f"""
    SELECT a.id,
           -- The plan in force on the month's last day, as plan_changes.plan_id_for_period:
           -- a change applied from a later month says what the plan was before it.
           COALESCE((
               SELECT pc.from_plan_id FROM {_t(PlanChange)} pc
               WHERE pc.account_id = a.id AND pc.status = 'applied' AND pc.effective_date > %(end)s
               ORDER BY pc.effective_date, pc.applied_at, pc.id LIMIT 1
           ), a.plan_id) AS plan_id,
           a.kind, a.number
    FROM {_t(ServiceAccount)} a {{agency_join}}
    WHERE a.id BETWEEN %(first)s AND %(last)s
      AND a.status = 'active' AND a.billing_mode = 'postpaid' AND a.opened_on <= %(end)s {{filters}}
"""  # noqa: S608 - table names from the models

# Bills and lines of the chunk's accounts not billed yet, priced as tariffs.bill_compute:
# lines in bill order (fee; tranches or overage; the SMS alert fee; plan-change
# proration; the correction of estimated bills; levies), each rounded to the
# currency; VAT on the taxable ones; total = lines + tax, never below zero.
_BILLS_SQL = f"""
WITH acc AS MATERIALIZED (
    SELECT s.* FROM ({_SCOPE_SQL}) s
    WHERE NOT EXISTS (SELECT 1 FROM {_t(Bill)} b WHERE b.account_id = s.id AND b.period = %(period)s)
),
cons AS MATERIALIZED (
    SELECT c.account_id, c.unit, c.quantity, c.meter_index
    FROM {_t(Consumption)} c JOIN acc ON acc.id = c.account_id
    -- The range as well: an index range scan, never a hash of the month's readings.
    WHERE c.period = %(period)s AND c.account_id BETWEEN %(first)s AND %(last)s
),
primary_unit (kind, unit) AS (VALUES {_UTILITY_UNITS}),
-- A meter not read this period: the average of its last readings, if it ever had one.
est AS MATERIALIZED (
    SELECT acc.id AS account_id, pu.unit, e.quantity
    FROM acc JOIN primary_unit pu ON pu.kind = acc.kind
    CROSS JOIN LATERAL (
        SELECT round(avg(h.quantity), 3) AS quantity, count(*) AS n
        FROM (
            SELECT h.quantity FROM {_t(Consumption)} h
            WHERE h.account_id = acc.id AND h.unit = pu.unit AND h.period < %(period)s
            ORDER BY h.period DESC LIMIT %(history)s
        ) h
    ) e
    WHERE e.n > 0 AND NOT EXISTS (SELECT 1 FROM cons WHERE cons.account_id = acc.id)
),
billable AS MATERIALIZED (
    SELECT acc.id AS account_id, acc.plan_id, acc.kind, acc.number, (est.account_id IS NOT NULL) AS estimated
    FROM acc LEFT JOIN est ON est.account_id = acc.id
    WHERE acc.kind NOT IN ({_UTILITY_KINDS}) OR est.account_id IS NOT NULL
       OR EXISTS (SELECT 1 FROM cons WHERE cons.account_id = acc.id)
),
-- Meters read this period after months billed on an estimate: the real use of those
-- months corrects the estimates (billing/estimates.py, which says which bills and how).
-- The chunk's estimated bills come from a partial index that holds only them, so
-- the rest of the chunk costs nothing here.
est_bills AS MATERIALIZED (
    SELECT eb.id, eb.account_id, eb.period FROM {_t(Bill)} eb
    WHERE eb.is_estimated AND eb.account_id BETWEEN %(first)s AND %(last)s AND eb.period < %(period)s
      AND eb.status <> 'cancelled'
),
fix AS MATERIALIZED (
    SELECT b.account_id, b.plan_id, c.unit, g.bill_ids,
           c.meter_index - l.meter_index - c.quantity AS real_qty,
           %(month_index)s - (extract(year FROM l.period) * 12 + extract(month FROM l.period))::int - 1 AS months
    FROM (SELECT DISTINCT account_id FROM est_bills) e
    JOIN billable b ON b.account_id = e.account_id AND NOT b.estimated
    JOIN primary_unit pu ON pu.kind = b.kind
    JOIN cons c ON c.account_id = b.account_id AND c.unit = pu.unit AND c.meter_index IS NOT NULL
    CROSS JOIN LATERAL (
        -- The estimated bills since the last one on a real reading.
        SELECT array_agg(eb.id) AS bill_ids, min(eb.period) AS first_period FROM est_bills eb
        WHERE eb.account_id = b.account_id AND eb.period > COALESCE((
            SELECT max(r.period) FROM {_t(Bill)} r
            WHERE r.account_id = b.account_id AND r.period < %(period)s AND NOT r.is_estimated
              AND r.status <> 'cancelled'
        ), '-infinity')
    ) g
    CROSS JOIN LATERAL (
        -- The last reading before them: where the real use starts.
        SELECT h.period, h.meter_index FROM {_t(Consumption)} h
        WHERE h.account_id = b.account_id AND h.unit = pu.unit AND h.period < g.first_period
        ORDER BY h.period DESC LIMIT 1
    ) l
    WHERE g.first_period IS NOT NULL AND l.meter_index IS NOT NULL
      AND c.meter_index - l.meter_index - c.quantity >= 0
),
fix_billed AS (
    SELECT f.account_id, COALESCE(sum(bl.quantity), 0) AS quantity, COALESCE(sum(bl.amount), 0) AS amount
    FROM fix f CROSS JOIN LATERAL unnest(f.bill_ids) AS x (bill_id)
    LEFT JOIN {_t(BillLine)} bl ON bl.bill_id = x.bill_id AND bl.kind = 'consumption'
    GROUP BY f.account_id
),
usage AS (
    SELECT account_id, unit, quantity FROM cons
    UNION ALL SELECT account_id, unit, quantity FROM est
),
lines AS MATERIALIZED (
    SELECT b.account_id, 1 AS grp, 0 AS sub, 'fixed_fee' AS kind, NULL::integer AS tier,
           NULL::numeric AS quantity, '' AS unit, NULL::numeric AS unit_price,
           round(p.monthly_fee, %(exponent)s) AS amount, TRUE AS taxable, NULL::bigint AS levy_id
    FROM billable b JOIN {_t(Plan)} p ON p.id = b.plan_id
  UNION ALL
    SELECT b.account_id, 2, t.position, 'consumption', t.position, q.in_tier, u.unit, t.unit_price,
           round(q.in_tier * t.unit_price, %(exponent)s), TRUE, NULL
    FROM billable b
    JOIN primary_unit pu ON pu.kind = b.kind
    JOIN usage u ON u.account_id = b.account_id AND u.unit = pu.unit
    JOIN {_t(PlanTier)} t ON t.plan_id = b.plan_id
    CROSS JOIN LATERAL (
        SELECT LEAST(u.quantity, COALESCE(t.to_quantity, u.quantity)) - t.from_quantity AS in_tier
    ) q
    WHERE q.in_tier > 0
  UNION ALL
    SELECT b.account_id, 2, o.ord, 'overage', NULL, u.quantity - COALESCE(o.included, 0), o.unit, o.price,
           round((u.quantity - COALESCE(o.included, 0)) * o.price, %(exponent)s), TRUE, NULL
    FROM billable b JOIN {_t(Plan)} p ON p.id = b.plan_id
    CROSS JOIN LATERAL (VALUES
        (1, '{Unit.MINUTES.value}', p.included_minutes::numeric, p.price_per_minute),
        (2, '{Unit.SMS.value}', p.included_sms::numeric, p.price_per_sms),
        (3, '{Unit.GB.value}', p.included_data_gb, p.price_per_gb)
    ) o (ord, unit, included, price)
    JOIN usage u ON u.account_id = b.account_id AND u.unit = o.unit
    WHERE b.kind NOT IN ({_UTILITY_KINDS}) AND o.price <> 0 AND u.quantity - COALESCE(o.included, 0) > 0
  UNION ALL
    -- The paid SMS alert service: its yearly fee in the subscription's anniversary month.
    SELECT b.account_id, 3, 0, 'fee', NULL, 1, '', NULL, %(sms_alert_fee)s, TRUE, NULL
    FROM billable b
    WHERE EXISTS (
        SELECT 1 FROM {_t(SmsAlertSubscription)} sa
        WHERE sa.account_id = b.account_id AND sa.account_id BETWEEN %(first)s AND %(last)s
          AND sa.started_on <= %(end)s
          AND (sa.ended_on IS NULL OR sa.ended_on >= %(period)s)
          AND extract(month FROM sa.started_on) = %(month)s
    )
  UNION ALL
    -- Immediate plan changes billed with this period: the fixed fee by the day, one line
    -- each, in the order applied, as plan_changes.plan_change_lines_for_period. The quantity
    -- is the days the line is about: those on the old plan, or on the new one when the
    -- month of the change had been billed already (its proration then comes a bill later).
    SELECT b.account_id, 4, row_number() OVER (PARTITION BY pc.account_id ORDER BY pc.applied_at, pc.id),
           'proration', NULL,
           (CASE WHEN pc.bill_period = date_trunc('month', pc.effective_date)::date
                 THEN extract(day FROM pc.effective_date) - 1
                 ELSE extract(day FROM date_trunc('month', pc.effective_date) + interval '1 month - 1 day')
                      - extract(day FROM pc.effective_date) + 1
            END)::numeric,
           '', NULL, round(pc.proration_amount, %(exponent)s), TRUE, NULL
    FROM billable b JOIN {_t(PlanChange)} pc ON pc.account_id = b.account_id
    WHERE pc.bill_period = %(period)s AND pc.account_id BETWEEN %(first)s AND %(last)s
      AND pc.status = 'applied' AND pc.proration_amount <> 0
  UNION ALL
    -- The correction of the estimated months (tariffs.estimate_correction_line): their
    -- real use priced on the tranches stretched to their number, less what was billed.
    SELECT f.account_id, 5, 0, 'estimate_fix', NULL, f.real_qty - fb.quantity, f.unit, NULL,
           COALESCE(r.amount, 0) - fb.amount, TRUE, NULL
    FROM fix f JOIN fix_billed fb ON fb.account_id = f.account_id
    CROSS JOIN LATERAL (
        SELECT sum(round(q.in_tier * t.unit_price, %(exponent)s)) AS amount
        FROM {_t(PlanTier)} t
        CROSS JOIN LATERAL (
            SELECT LEAST(f.real_qty, COALESCE(t.to_quantity * f.months, f.real_qty)) - t.from_quantity * f.months
                   AS in_tier
        ) q
        WHERE t.plan_id = f.plan_id AND q.in_tier > 0
    ) r
    WHERE f.real_qty <> fb.quantity OR COALESCE(r.amount, 0) <> fb.amount
  UNION ALL
    SELECT b.account_id, 6, l.position, 'levy', NULL, NULL, '', NULL,
           round(l.amount, %(exponent)s), l.taxable, l.id
    FROM billable b JOIN {_t(PlanLevy)} l ON l.plan_id = b.plan_id
),
totals AS (
    SELECT account_id, sum(amount) AS amount_lines,
           COALESCE(sum(amount) FILTER (WHERE taxable), 0) AS taxable
    FROM lines GROUP BY account_id
),
new_bills AS (
    INSERT INTO {_t(Bill)} (
        number, account_id, period, issue_date, due_date, currency, amount_lines, amount_tax,
        amount_total, amount_paid, amount_due, status, is_estimated, created_at
    )
    SELECT b.number || %(number_suffix)s, b.account_id, %(period)s, %(issue_date)s, %(due_date)s, %(currency)s,
           t.amount_lines + c.carried, x.tax, t.amount_lines + x.tax + c.carried, 0,
           t.amount_lines + x.tax + c.carried, 'issued', b.estimated, %(now)s
    FROM billable b
    JOIN totals t ON t.account_id = b.account_id
    JOIN {_t(Plan)} p ON p.id = b.plan_id
    CROSS JOIN LATERAL (SELECT round(t.taxable * COALESCE(p.vat_rate, %(vat_rate)s), %(exponent)s) AS tax) x
    -- Credits beyond the charges: the bill comes to zero, the rest goes to the account's
    -- credit (its line is added after, _CARRY_SQL, for these few bills).
    CROSS JOIN LATERAL (SELECT GREATEST(-(t.amount_lines + x.tax), 0) AS carried) c
    ORDER BY b.account_id
    -- A bill of the period written meanwhile (another run, bill_issue) is skipped. Every
    -- unique index is an arbiter: with (account, period) alone, two runs racing for an
    -- account failed on the bill number's index instead (it is the same key, spelt out).
    ON CONFLICT DO NOTHING
    RETURNING id, account_id, amount_total, is_estimated
),
new_lines AS (
    INSERT INTO {_t(BillLine)} (bill_id, position, kind, tier, quantity, unit, unit_price, amount, levy_id)
    SELECT n.id, row_number() OVER (PARTITION BY l.account_id ORDER BY l.grp, l.sub),
           l.kind, l.tier, l.quantity, l.unit, l.unit_price, l.amount, l.levy_id
    FROM new_bills n JOIN lines l ON l.account_id = n.account_id
)
SELECT id, account_id, amount_total, is_estimated FROM new_bills
"""  # noqa: S608 - table names from the models, every value a parameter

# The credit-carried line of the bills that came to zero with credits to spare
# (tariffs.bill_compute): last, for the difference between the bill's lines
# amount and its lines.
_CARRY_SQL = f"""
INSERT INTO {_t(BillLine)} (bill_id, position, kind, tier, quantity, unit, unit_price, amount, levy_id)
SELECT b.id, s.last + 1, 'credit_carried', NULL, NULL, '', NULL, b.amount_lines - s.amount, NULL
FROM {_t(Bill)} b JOIN (
    SELECT bill_id, max(position) AS last, sum(amount) AS amount FROM {_t(BillLine)}
    WHERE bill_id = ANY(%s::bigint[]) GROUP BY bill_id
) s ON s.bill_id = b.id
WHERE b.amount_lines > s.amount
RETURNING bill_id, amount
"""  # noqa: S608
_COUNT_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM {_t(Bill)} b WHERE b.account_id = s.id AND b.period = %(period)s))
FROM ({_SCOPE_SQL}) s
"""  # noqa: S608

# The accounts of the new bills that hold credit, locked in id order: a payment
# adds to the credit under the same lock (payments/locks.py), so the amount read
# here is the one there is, and nothing is used twice.
_CREDIT_LOCK_SQL = f"""
SELECT id, credit FROM {_t(ServiceAccount)} WHERE id = ANY(%s::bigint[]) AND credit > 0 ORDER BY id FOR UPDATE
"""  # noqa: S608
_CREDIT_TAKE_SQL = f"""
UPDATE {_t(ServiceAccount)} a SET credit = a.credit - v.used
FROM unnest(%s::bigint[], %s::numeric[]) AS v (id, used) WHERE a.id = v.id
"""  # noqa: S608
_CREDIT_PAY_SQL = f"""
UPDATE {_t(Bill)} b SET amount_paid = v.used, amount_due = b.amount_total - v.used,
       status = CASE WHEN b.amount_total - v.used = 0 THEN 'paid' ELSE 'partially_paid' END
FROM unnest(%s::bigint[], %s::numeric[]) AS v (id, used) WHERE b.id = v.id
"""  # noqa: S608


def _scope_sql(sql: str, run: BillRun) -> str:
    agency_join, filters = "", ""
    if run.agency_id is not None:
        agency_join = f"JOIN {_t(Subscriber)} sub ON sub.id = a.subscriber_id"
        filters += " AND sub.agency_id = %(agency)s"
    if run.billing_cycle is not None:
        filters += " AND a.billing_cycle = %(cycle)s"
    return sql.replace("{agency_join}", agency_join).replace("{filters}", filters)


def _chunk_bill_sql(chunk: BillRunChunk) -> ChunkCounts:
    run = chunk.run
    currency = settings.SELFCARE_CURRENCY
    now = timezone.now()
    params = {
        "first": chunk.first_account_id,
        "last": chunk.last_account_id,
        "period": run.period,
        "end": period_end(run.period),
        "month": run.period.month,
        "month_index": run.period.year * 12 + run.period.month,
        "agency": run.agency_id,
        "cycle": run.billing_cycle,
        "history": settings.SELFCARE_ESTIMATE_PERIODS,
        "exponent": currency_exponent(currency),
        "sms_alert_fee": quantize(Decimal(settings.SELFCARE_SMS_ALERT_YEARLY_FEE), currency),
        "number_suffix": f"-{run.period:%Y%m}",
        "issue_date": run.issue_date,
        "due_date": bill_due_date(issue_date=run.issue_date),
        "currency": currency,
        "vat_rate": Decimal(settings.SELFCARE_VAT_RATE),
        "now": now,
    }
    counts = ChunkCounts()
    with connection.cursor() as cursor:
        # The chunk's lines are sorted and grouped in memory rather than on disk. No JIT:
        # the estimate of a branch that rarely runs (the estimate corrections' scan of
        # bill lines) lifts the statement over jit_above_cost, and compiling it cost
        # more than a tenth of the chunk's time (PostgreSQL 15) for nothing in return.
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)",
            [settings.SELFCARE_BILL_RUN_WORK_MEM],
        )
        cursor.execute(_scope_sql(_BILLS_SQL, run), params)
        new = cursor.fetchall()
        cursor.execute(_scope_sql(_COUNT_SQL, run), params)
        in_scope, with_bill = cursor.fetchone()
        totals = {account_id: (bill_id, total) for bill_id, account_id, total, _estimated in new}
        if totals:
            cursor.execute(_CREDIT_LOCK_SQL, [int_array(sorted(totals))])
            used = [(totals[account_id][0], account_id, min(credit, totals[account_id][1]))
                    for account_id, credit in cursor.fetchall()]  # fmt: skip
            used = [(bill_id, account_id, amount) for bill_id, account_id, amount in used if amount > 0]
            if used:
                cursor.execute(_CREDIT_TAKE_SQL, [[a for _b, a, _u in used], [u for _b, _a, u in used]])
                cursor.execute(_CREDIT_PAY_SQL, [[b for b, _a, _u in used], [u for _b, _a, u in used]])
            zero = {bill_id: account_id for bill_id, account_id, total, _e in new if total == 0}
            if zero:
                _carry_credit(cursor, zero, currency)
    bill_ids = [bill_id for bill_id, _a, _t, _e in new]
    if bill_ids:
        try:
            with transaction.atomic():
                counts.messages = bills_announce_set(
                    bill_ids=bill_ids, account_ids=sorted(totals), currency=currency, now=now
                )
        except BulkUnsupported:
            counts.messages = _announce_per_bill(bill_ids)
    counts.accounts = in_scope
    counts.estimated = sum(1 for row in new if row[3])
    counts.billed = len(new) - counts.estimated
    counts.already_billed = with_bill - len(new)
    counts.skipped = in_scope - with_bill
    return counts


def _carry_credit(cursor, bills: dict[int, int], currency: str) -> None:  # type: ignore[no-untyped-def]
    """The credit-carried lines of the bills (id: account id) that came to zero,
    and the credit they carry applied to their accounts' open bills, the rest to
    the accounts' credit (services.account_credit_carry). A few accounts a run,
    so one at a time, in id order, each locked before its bills as payments lock."""
    cursor.execute(_CARRY_SQL, [int_array(sorted(bills))])
    added = {bills[bill_id]: amount for bill_id, amount in cursor.fetchall()}
    for account_id in sorted(added):
        account_credit_carry(account_id=account_id, amount=added[account_id], currency=currency)


def _announce_per_bill(bill_ids: list[int]) -> int:
    """The per-message path, for a locale the set-based writer cannot format."""
    return bills_announce(bills=bills_with_channels(Bill.objects.filter(pk__in=bill_ids)).iterator(chunk_size=1000))


# --- Reads for the run's pages ----------------------------------------------------


def period_parse(text: str) -> dt.date:
    """`2026-11` (what an operator types) as the month's first day; refuses anything else."""
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise BillRunRefused(_("Give the month as YYYY-MM, e.g. 2026-11."), code="bad_period") from None


def period_check(period: dt.date) -> dt.date:
    """A month that can be billed: a first day, and not a month to come."""
    if period.day != 1:
        raise BillRunRefused(_("A bill run bills a whole month: give its first day."), code="period_not_month")
    if period > timezone.localdate().replace(day=1):
        raise BillRunRefused(_("This month has not begun yet."), code="period_in_future")
    return period


def bill_run_skipped_accounts(*, run: BillRun, limit: int = 50) -> list[ServiceAccount]:
    """Meters of the run's scope with no bill for its period and no reading ever
    up to it: what the run counted as skipped (no estimate possible)."""
    scope = run_scope(period=run.period, agency_id=run.agency_id, billing_cycle=run.billing_cycle)
    return list(
        scope.filter(kind__in=UTILITY_KINDS)
        .exclude(bills__period=run.period)
        .exclude(consumptions__period__lte=run.period)
        .order_by("id")[:limit]
    )
