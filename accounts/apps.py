from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = _("Customers and agencies")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from .backends import login_failure_count

        user_login_failed.connect(login_failure_count, dispatch_uid="accounts.login_failure_count")


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on a site that asks staff for a second factor (adminsite.py)."""

    default = False
    default_site = "accounts.adminsite.StaffAdminSite"
