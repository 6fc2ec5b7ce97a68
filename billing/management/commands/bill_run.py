from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import Agency
from billing import runs
from billing.models import BillRun
from billing.tasks import bill_run_enqueue
from core.audit import audit_system

BAR_WIDTH = 30


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # Read when the parser is made, in the language active then (LANGUAGE_CODE):
        # argparse cannot print a lazy string.
        return _(
            "Bill a month for every active postpaid account (of one agency, of one billing cycle), "
            "with a progress bar. Running it again bills only what is missing."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        languages = [code for code, _name in settings.LANGUAGES]
        parser.add_argument("--period", help=gettext_lazy("the month to bill, YYYY-MM"))
        parser.add_argument("--agency", help=gettext_lazy("an agency's code: only its subscribers' accounts"))
        parser.add_argument("--cycle", type=int, help=gettext_lazy("a billing cycle (1-31): only its accounts"))
        parser.add_argument("--issue-date", help=gettext_lazy("YYYY-MM-DD (default: today)"))
        parser.add_argument(
            "--resume", type=int, metavar="RUN_ID", help=gettext_lazy("retry what an earlier run did not finish")
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help=gettext_lazy("bill the chunks in this process instead of the Celery workers"),
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            help=gettext_lazy("accounts per chunk (default %(size)s)") % {"size": settings.SELFCARE_BILL_RUN_CHUNK},
        )
        parser.add_argument(
            "--language",
            choices=languages,
            help=gettext_lazy("the language of the output (default: the settings' LANGUAGE_CODE, %(code)s)")
            % {"code": settings.LANGUAGE_CODE},
        )

    def handle(self, *args, **options) -> None:
        # The operator's language: --language, else the deployment's (LANGUAGE_CODE),
        # whatever language the caller happens to have active.
        language = options.get("language") or settings.LANGUAGE_CODE
        with translation.override(language), audit_system("bill_run"):
            self._handle(options)

    def _handle(self, options: dict) -> None:
        run = self._resume(options["resume"]) if options["resume"] else self._start(options)
        self.stdout.write(
            ngettext(
                "Bill run %(run)s: %(period)s, %(scope)s, %(chunks)s chunk.",
                "Bill run %(run)s: %(period)s, %(scope)s, %(chunks)s chunks.",
                run.chunks_total,
            )
            % {"run": run.pk, "period": f"{run.period:%Y-%m}", "scope": run.scope, "chunks": run.chunks_total}
        )
        if options["inline"] or settings.CELERY_TASK_ALWAYS_EAGER:
            self._bill_here(run)
        else:
            queued = bill_run_enqueue(run=run)
            self.stdout.write(
                ngettext(
                    "%(count)s chunk handed to the Celery workers.",
                    "%(count)s chunks handed to the Celery workers.",
                    queued,
                )
                % {"count": queued}
            )
            self._follow(run)
        run.refresh_from_db()
        counts = {
            "status": run.get_status_display(), "billed": run.billed, "estimated": run.estimated,
            "already": run.already_billed, "skipped": run.skipped, "failed": run.failed,
            "accounts": run.accounts_in_scope,
        }  # fmt: skip
        summary = _(
            "%(status)s: %(billed)s billed on a reading, %(estimated)s estimated, %(already)s already billed, "
            "%(skipped)s skipped (no reading, no history), %(failed)s failed, of %(accounts)s accounts."
        )
        self.stdout.write("\n" + summary % counts)
        if run.status == BillRun.Status.FAILED:
            raise CommandError(
                _("Some chunks failed:\n%(errors)s\nRun again with --resume %(run)s.")
                % {"errors": run.errors, "run": run.pk}
            )

    def _start(self, options: dict) -> BillRun:
        if not options["period"]:
            raise CommandError(_("--period is required (YYYY-MM), unless you --resume a run."))
        agency = None
        if options["agency"]:
            agency = Agency.objects.filter(code=options["agency"]).first()
            if agency is None:
                raise CommandError(_("No agency has the code “%(code)s”.") % {"code": options["agency"]})
        issue_date = None
        if options["issue_date"]:
            try:
                issue_date = dt.date.fromisoformat(options["issue_date"])
            except ValueError:
                raise CommandError(_("--issue-date takes a date as YYYY-MM-DD.")) from None
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError(_("--chunk-size must be at least 1."))
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
            raise CommandError(_("There is no bill run %(run)s.") % {"run": run_id})
        pending = runs.bill_run_resume(run=run)
        self.stdout.write(
            ngettext("%(count)s chunk to bill again.", "%(count)s chunks to bill again.", pending) % {"count": pending}
        )
        run.refresh_from_db()
        return run

    def _bill_here(self, run: BillRun) -> None:
        self._draw(run)
        for chunk_id in runs.bill_run_pending_chunks(run=run):
            try:
                runs.bill_run_chunk_process(chunk_id=chunk_id)
            except Exception as exc:  # recorded on the chunk; the others go on
                self.stderr.write(
                    "\n"
                    + _("chunk %(chunk)s: %(error)s") % {"chunk": chunk_id, "error": f"{type(exc).__name__}: {exc}"}
                )
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
            self.stdout.write(
                "\n"
                + _("The run goes on in the workers; follow it in the back office (bill run %(run)s).")
                % {"run": run.pk}
            )
            raise SystemExit(0) from None

    _last_step = -1

    def _draw(self, run: BillRun) -> None:
        percent = run.progress_percent
        filled = BAR_WIDTH * percent // 100
        counts = _("chunks %(done)s/%(total)s  billed %(billed)s  skipped %(skipped)s  failed %(failed)s") % {
            "done": run.chunks_done, "total": run.chunks_total, "billed": run.billed + run.estimated,
            "skipped": run.skipped, "failed": run.failed,
        }  # fmt: skip
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}%  {counts}"
        if self.stdout.isatty():
            self.stdout.write("\r" + line, ending="")
            self.stdout.flush()
        elif percent // 10 != self._last_step:  # a log file gets a line per tenth, not a wall of \r
            self._last_step = percent // 10
            self.stdout.write(line)
