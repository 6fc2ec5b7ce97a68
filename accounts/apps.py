from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = _("Customers and agencies")


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on a site that asks staff for a second factor (adminsite.py)."""

    default = False
    default_site = "accounts.adminsite.StaffAdminSite"
