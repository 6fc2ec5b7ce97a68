from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from payments.demo import SANDBOX_KEY_ID, SANDBOX_SECRET, konnect_provider_ensure, sandbox_provider_ensure


class Command(BaseCommand):
    help = "Create the demo's sandbox bank, whose API secret is public, and its Konnect wallet (DEBUG only)."

    def handle(self, *args, **options) -> None:
        try:
            sandbox_provider_ensure()
            konnect = konnect_provider_ensure()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f'Bank API (README "Bank and wallet API", docs at /api/docs/): '
            f"X-Provider-Key {SANDBOX_KEY_ID}, secret {SANDBOX_SECRET}"
        )
        self.stdout.write(f"Wallet checkout: {konnect.name}, through the Konnect gateway at {settings.KONNECT_API_URL}")
