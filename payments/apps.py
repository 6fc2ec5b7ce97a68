from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # The OpenAPI description of the signature scheme and the checkout
        # adapters (payments/gateways/) register themselves on import.
        from . import apidoc, gateways  # noqa: F401
