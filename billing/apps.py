from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        # Declares billing's message events, so the outbox can label every row
        # in any process (a worker, the admin), whatever it imported first.
        from . import messages  # noqa: F401
