"""Staff roles: Django groups and what each may do, declared once.

The data migration `accounts.0004_staff_roles` creates the groups from here, the
demo seed and the tests use the same names, so a role means the same thing on
every server. Which customers a role reaches is not a permission but the
staff member's agencies (accounts.selectors.staff_agency_ids); auditors reach
every agency, read-only.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.management import create_permissions

CLERK = "clerk"
SUPERVISOR = "supervisor"
AUDITOR = "auditor"

# At the counter: find a customer, register their channels, print paper copies,
# and ask (never decide) a transfer of contract or a login re-link.
CLERK_PERMISSIONS = (
    "accounts.view_agency",
    "accounts.view_subscriber",
    "accounts.change_subscriber",
    "accounts.view_contactchannel",
    "accounts.add_contactchannel",
    "accounts.change_contactchannel",
    "accounts.view_channelverification",
    "billing.view_plan",
    "billing.view_plantier",
    "billing.view_serviceaccount",
    "billing.view_consumption",
    "billing.view_readingcorrection",
    "billing.view_bill",
    "billing.view_billline",
    "billing.view_printrequest",
    "billing.change_printrequest",
    "billing.view_smsalertsubscription",
    "billing.view_changerequest",
    "billing.add_changerequest",
    "billing.view_planchange",
    "notifications.view_message",
    "accounts.view_agencyhours",
    "accounts.view_agencyhoursreduction",
    "payments.view_payment",
    "payments.view_allocation",
    # A subscriber's checkouts at a bank or wallet, and why one failed.
    "payments.view_paymentorder",
    # Payments taken at their agency's counter (cash, cheque, card), and their receipts.
    "payments.view_counterpayment",
    "payments.add_counterpayment",
    # The overdue ladder: the agency's overdue list, the field team's orders (print,
    # mark carried out), exemptions (read), and technician visits (book, move).
    "billing.view_overdueaccount",
    "billing.view_dunningstep",
    "billing.view_dunningladderstep",
    "billing.view_fieldorder",
    "billing.change_fieldorder",
    "billing.view_dunningexemption",
    "billing.view_appointment",
    "billing.add_appointment",
    "billing.change_appointment",
)

# Their agency's clerk work, plus the decisions: approvals, reading corrections,
# opening contracts, sending bills and re-sending failed messages.
SUPERVISOR_PERMISSIONS = (
    *CLERK_PERMISSIONS,
    "billing.add_serviceaccount",
    "billing.change_serviceaccount",
    "billing.add_readingcorrection",
    "billing.announce_bill",
    "billing.approve_changerequest",
    "billing.approve_planchange",
    # Exempting an account from disconnection (medical need, dispute) is a decision.
    "billing.add_dunningexemption",
    "billing.change_dunningexemption",
    # Bill runs of their agencies (every agency: superusers only, billing.admin).
    "billing.view_billrun",
    "billing.add_billrun",
    "notifications.resend_message",
    "notifications.view_deliveryreport",
    # Their agency's opening hours, emergency reductions and paperless date.
    "accounts.change_agency",
    "accounts.add_agencyhours",
    "accounts.change_agencyhours",
    "accounts.delete_agencyhours",
    "accounts.add_agencyhoursreduction",
    "accounts.change_agencyhoursreduction",
    "accounts.delete_agencyhoursreduction",
    # Correct a counter payment (a reversal with a reason), and reconcile their
    # agency counter's settlement files (payments.selectors.settlement_providers).
    "payments.reverse_counterpayment",
    "payments.view_settlementimport",
    "payments.add_settlementimport",
    "payments.view_settlementline",
)

# Read-only, every agency: every `view_` permission of these apps.
AUDITOR_VIEW_APPS = ("accounts", "auth", "billing", "core", "notifications", "payments", "backoffice", "auditlog")

# Reading the audit trail (django-auditlog's LogEntry), for supervisors (their
# agencies' entries) and auditors. Granted once the permission exists: auditlog's
# tables may come after `accounts.0004_staff_roles`, and `backoffice.0003`
# syncs the roles again after them.
AUDIT_TRAIL_PERMISSIONS = ("auditlog.view_logentry",)

# A group of the demo seed before roles existed; renamed so its members keep working.
_LEGACY_CLERK_GROUP = "Agency clerks"


def role_permission_names(role: str, *, available: Iterable[str] = ()) -> set[str]:
    """`app_label.codename` of a role's permissions; the auditor's come from
    `available`, every permission that exists."""
    if role == CLERK:
        return set(CLERK_PERMISSIONS)
    if role == SUPERVISOR:
        return set(SUPERVISOR_PERMISSIONS) | (set(AUDIT_TRAIL_PERMISSIONS) & set(available))
    if role == AUDITOR:
        return {name for name in available if name.split(".")[0] in AUDITOR_VIEW_APPS and ".view_" in name}
    raise ValueError(f"Unknown role {role!r}")


def roles_sync(*, group_model, permission_model, strict: bool = True) -> dict:  # type: ignore[no-untyped-def]
    """Create or update the role groups with exactly their permissions.

    Takes the models so a migration can pass its historical ones. Strict (after
    every `migrate`, accounts.apps), a declared permission that does not exist
    raises, so a typo fails the migration, not a clerk. A data migration syncs
    leniently: the roles name permissions of apps whose tables a fresh database
    creates only later, and the sync after `migrate` grants them.
    """
    if (
        group_model.objects.filter(name=_LEGACY_CLERK_GROUP).exists()
        and not group_model.objects.filter(name=CLERK).exists()
    ):
        group_model.objects.filter(name=_LEGACY_CLERK_GROUP).update(name=CLERK)
    permissions = {
        f"{p.content_type.app_label}.{p.codename}": p for p in permission_model.objects.select_related("content_type")
    }
    groups = {}
    for role in (CLERK, SUPERVISOR, AUDITOR):
        wanted = role_permission_names(role, available=permissions)
        missing = wanted - permissions.keys()
        if not strict:
            wanted -= missing
        elif missing:
            raise LookupError(f"Role {role} names unknown permissions: {sorted(missing)}")
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set([permissions[name] for name in wanted])
        groups[role] = group
    return groups


def roles_sync_in_migration(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    """A data migration's RunPython: create the permissions of the tables that
    exist so far (Django makes them only after all migrations, in post_migrate),
    then sync leniently; the strict sync after `migrate` (accounts.apps) grants
    the rest."""
    for app_config in apps.get_app_configs():  # the migration's stubs, not the live apps
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    roles_sync(
        group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"), strict=False
    )
