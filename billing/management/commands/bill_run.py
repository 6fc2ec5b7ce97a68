from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from accounts.models import Agency
from billing import runs
from billing.models import BillRun
from billing.tasks import bill_run_enqueue
from core.audit import audit_system

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Bill a month for every active postpaid account (of one agency, of one billing cycle), "
        "with a progress bar. Running it again bills only what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", help="the month to bill, YYYY-MM")
        parser.add_argument("--agency", help="an agency's code: only its subscribers' accounts")
        parser.add_argument("--cycle", type=int, help="a billing cycle (1-31): only its accounts")
        parser.add_argument("--issue-date", help="YYYY-MM-DD (default: today)")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="retry what an earlier run did not finish")
        parser.add_argument(
            "--inline", action="store_true", help="bill the chunks in this process instead of the Celery workers"
        )
        parser.add_argument(
            "--chunk-size", type=int, help=f"accounts per chunk (default {settings.SELFCARE_BILL_RUN_CHUNK})"
        )

    def handle(self, *args, **options) -> None:
        # A terminal tool: its output in English, as the other commands'.
        with translation.override("en"), audit_system("bill_run"):
            self._handle(options)

    def _handle(self, options: dict) -> None:
        run = self._resume(options["resume"]) if options["resume"] else self._start(options)
        self.stdout.write(f"Bill run {run.pk}: {run.period:%Y-%m}, {run.scope}, {run.chunks_total} chunks.")
        if options["inline"] or settings.CELERY_TASK_ALWAYS_EAGER:
            self._bill_here(run)
        else:
            queued = bill_run_enqueue(run=run)
            self.stdout.write(f"{queued} chunks handed to the Celery workers.")
            self._follow(run)
        run.refresh_from_db()
        self.stdout.write(
            f"\n{run.get_status_display()}: {run.billed} billed on a reading, {run.estimated} estimated, "
            f"{run.already_billed} already billed, {run.skipped} skipped (no reading, no history), "
            f"{run.failed} failed, of {run.accounts_in_scope} accounts."
        )
        if run.status == BillRun.Status.FAILED:
            raise CommandError(f"Some chunks failed:\n{run.errors}\nRun again with --resume {run.pk}.")

    def _start(self, options: dict) -> BillRun:
        if not options["period"]:
            raise CommandError("--period is required (YYYY-MM), unless you --resume a run.")
        agency = None
        if options["agency"]:
            agency = Agency.objects.filter(code=options["agency"]).first()
            if agency is None:
                raise CommandError(f"No agency has the code {options['agency']!r}.")
        issue_date = None
        if options["issue_date"]:
            try:
                issue_date = dt.date.fromisoformat(options["issue_date"])
            except ValueError:
                raise CommandError("--issue-date takes a date as YYYY-MM-DD.") from None
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        try:
            return runs.bill_run_start(
                period=runs.period_parse(options["period"]), agency=agency, billing_cycle=options["cycle"],
                issue_date=issue_date, chunk_size=options["chunk_size"],
            )  # fmt: skip
        except runs.BillRunRefused as exc:
            raise CommandError(exc.message) from None

    def _resume(self, run_id: int) -> BillRun:
        run = BillRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"There is no bill run {run_id}.")
        pending = runs.bill_run_resume(run=run)
        self.stdout.write(f"{pending} chunks to bill again.")
        run.refresh_from_db()
        return run

    def _bill_here(self, run: BillRun) -> None:
        self._draw(run)
        for chunk_id in runs.bill_run_pending_chunks(run=run):
            try:
                runs.bill_run_chunk_process(chunk_id=chunk_id)
            except Exception as exc:  # recorded on the chunk; the others go on
                self.stderr.write(f"\nchunk {chunk_id}: {type(exc).__name__}: {exc}")
            run.refresh_from_db()
            self._draw(run)

    def _follow(self, run: BillRun) -> None:
        """Draw the bar from the run's row until the workers have ended it."""
        try:
            while True:
                run.refresh_from_db()
                self._draw(run)
                if run.is_over():
                    return
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write(f"\nThe run goes on in the workers; follow it in the back office (bill run {run.pk}).")
            raise SystemExit(0) from None

    _last_step = -1

    def _draw(self, run: BillRun) -> None:
        percent = run.progress_percent
        filled = BAR_WIDTH * percent // 100
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}%  "
            f"chunks {run.chunks_done}/{run.chunks_total}  billed {run.billed + run.estimated}  "
            f"skipped {run.skipped}  failed {run.failed}"
        )
        if self.stdout.isatty():
            self.stdout.write("\r" + line, ending="")
            self.stdout.flush()
        elif percent // 10 != self._last_step:  # a log file gets a line per tenth, not a wall of \r
            self._last_step = percent // 10
            self.stdout.write(line)
