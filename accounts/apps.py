from __future__ import annotations

from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def roles_sync_after_migrate(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """After every `migrate`, the role groups hold exactly what accounts.roles
    declares, for every app, strictly: the data migrations could only grant the
    permissions of tables that existed when they ran."""
    # Imported here: models cannot be imported before the app registry is ready.
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from .roles import roles_sync

    # Django creates permissions app by app as post_migrate goes; create them all
    # now so the roles can name those of apps that come after this one.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_sync(group_model=Group, permission_model=Permission, strict=True)


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = _("Customers and agencies")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from .backends import login_failure_count

        user_login_failed.connect(login_failure_count, dispatch_uid="accounts.login_failure_count")
        post_migrate.connect(roles_sync_after_migrate, sender=self, dispatch_uid="accounts_roles_sync")


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on a site that asks staff for a second factor (adminsite.py)."""

    default = False
    default_site = "accounts.adminsite.StaffAdminSite"
