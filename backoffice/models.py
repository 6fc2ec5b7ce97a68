from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from accounts.models import Subscriber


class Customer(Subscriber):
    """The Customer 360 entry of the admin index: a subscriber seen whole
    (accounts, bills, channels, messages, audit). No table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("customer 360")
        verbose_name_plural = _("customer 360")
        default_permissions = ()
