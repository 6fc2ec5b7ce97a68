from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The agency back office's own pages (Customer 360) and the audit trail."""

    name = "backoffice"
    verbose_name = _("Back office")

    def ready(self) -> None:
        from auditlog.models import LogEntry
        from auditlog.registry import auditlog
        from django.db.models.signals import pre_save

        from core.audit import fill_system_actor

        # What the audit trail follows: every model holding a customer's data or
        # deciding what they pay. Not the outbox (Message: its status ladder is its
        # own log, and the relay writes it in bulk) nor bill lines (written once,
        # with their bill, whose entry says so).
        for label, options in AUDITED_MODELS.items():
            auditlog.register(self.apps.get_model(label), **options)
        pre_save.connect(fill_system_actor, sender=LogEntry, dispatch_uid="audit_fill_system_actor")


AUDITED_MODELS: dict[str, dict] = {
    # Never the password hash; last_login changes at each login and says nothing.
    "accounts.User": {
        "exclude_fields": ["password", "last_login"],
        "m2m_fields": {"groups", "user_permissions", "agencies"},
    },
    "accounts.Agency": {},
    "accounts.Subscriber": {},
    "accounts.ContactChannel": {},
    # Who asked for a code and when; the code's hash and the salt it is derived
    # from stay out of the trail.
    "accounts.ChannelVerification": {"exclude_fields": ["code_hash", "salt"]},
    "billing.Plan": {},
    "billing.PlanTier": {},
    "billing.PlanLevy": {},
    # Who started which run, for what; its counts are the chunks' (billing/runs.py).
    "billing.BillRun": {},
    "billing.ServiceAccount": {},
    "billing.Consumption": {},
    "billing.Bill": {},
    "billing.PrintRequest": {},
    "billing.SmsAlertSubscription": {},
    # Maker-checker requests and reading corrections: who asked, who decided.
    "billing.ChangeRequest": {},
    "billing.ReadingCorrection": {},
    # Who asked for a plan change, who decided it, and when it took effect.
    "billing.PlanChange": {},
    # The overdue ladder: its days, each step taken, the field team's orders, who
    # exempted an account and why; and technician visits.
    "billing.DunningLadderStep": {},
    "billing.DunningStep": {},
    "billing.FieldOrder": {},
    "billing.DunningExemption": {},
    "billing.Appointment": {},
    # Opening hours and emergency reductions the public page shows.
    "accounts.AgencyHours": {},
    "accounts.AgencyHoursReduction": {},
    # Money in and out: a payment, where it went, and the providers (never their
    # sealed secrets, which a trail has no business copying).
    "payments.Payment": {},
    "payments.Allocation": {},
    "payments.Provider": {"exclude_fields": ["secret_sealed", "previous_secret_sealed"]},
    # Money taken at a counter (who, which agency, cash, cheque or card), and each
    # settlement file imported with its result; its lines are written in bulk with
    # it, whose entry says so.
    "payments.CounterPayment": {},
    "payments.SettlementImport": {},
}
